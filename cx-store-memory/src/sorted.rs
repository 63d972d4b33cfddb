//! Merging two sorted vectors into one, for merges of customers (timelines, contact histories).

/// Merges `a` and `b`, both sorted by `le` (a "less than or equal" order), into one sorted
/// vector in one pass. On ties the element of `a` comes first.
pub(crate) fn merge_sorted<T>(a: Vec<T>, b: Vec<T>, le: impl Fn(&T, &T) -> bool) -> Vec<T> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => le(x, y),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        merged.extend(if take_a { a.next() } else { b.next() });
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_in_order_with_the_first_side_first_on_ties() {
        let a = vec![(1, 'a'), (3, 'a'), (3, 'b')];
        let b = vec![(0, 'x'), (3, 'x'), (9, 'x')];
        let merged = merge_sorted(a, b, |x, y| x.0 <= y.0);
        assert_eq!(
            merged,
            [(0, 'x'), (1, 'a'), (3, 'a'), (3, 'b'), (3, 'x'), (9, 'x')]
        );
        assert_eq!(merge_sorted(vec![], vec![1], |x, y| x <= y), [1]);
    }
}
