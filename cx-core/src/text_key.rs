//! A string's length and its first and last (at most) 8 bytes, as integers.
//!
//! Ids, names and rule constants are mostly at most 16 bytes long; for those, equal keys mean
//! equal strings, so comparing or looking one up costs a few integer comparisons instead of a
//! byte loop. Longer strings with equal keys are compared in full.

/// The key of one string (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextKey {
    len: usize,
    head: u64,
    tail: u64,
}

impl TextKey {
    /// The longest string whose key alone tells it apart from every other.
    const EXACT: usize = 16;

    /// The key of `text`.
    #[inline]
    pub(crate) fn of(text: &str) -> Self {
        let bytes = text.as_bytes();
        let word = |chunk: Option<&[u8; 8]>| match chunk {
            Some(chunk) => u64::from_le_bytes(*chunk),
            // Shorter than 8 bytes: head and tail are the whole string.
            None => bytes.iter().fold(0, |w, &b| w << 8 | u64::from(b)),
        };
        TextKey {
            len: bytes.len(),
            head: word(bytes.first_chunk()),
            tail: word(bytes.last_chunk()),
        }
    }

    /// Whether equal keys mean equal strings: the string is at most 16 bytes long.
    #[inline]
    pub(crate) fn is_exact(self) -> bool {
        self.len <= Self::EXACT
    }

    /// Whether `text` (whose key is `self`) equals `other` (whose key is `other_key`).
    #[inline]
    pub(crate) fn same(self, text: &str, other_key: TextKey, other: &str) -> bool {
        self == other_key && (self.is_exact() || text == other)
    }
}

/// Whether `a == b`, without a call to compare bytes when they are at most 16 bytes long (as
/// names mostly are): a length test, then two overlapping words of 8, 4 or 1 bytes (the first
/// and last of each string; for 1 to 3 bytes, the first, middle and last byte).
#[inline(always)]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let len = a.len();
    if len != b.len() {
        return false;
    }
    match len {
        0 => true,
        1..=3 => a.first() == b.first() && a.get(len / 2) == b.get(len / 2) && a.last() == b.last(),
        4..=7 => {
            a.first_chunk::<4>() == b.first_chunk::<4>()
                && a.last_chunk::<4>() == b.last_chunk::<4>()
        }
        8..=TextKey::EXACT => {
            a.first_chunk::<8>() == b.first_chunk::<8>()
                && a.last_chunk::<8>() == b.last_chunk::<8>()
        }
        _ => a == b,
    }
}

/// One word per key, mixed from all three parts: a map keyed by text keys hashes once.
impl std::hash::Hash for TextKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.head ^ self.tail.rotate_left(29) ^ self.len as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::TextKey;

    #[test]
    fn same_text_is_string_equality() {
        let texts = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abc",
            "1234567",
            "1234568",
            "12345678",
            "12345679",
            "123456789",
            "223456789",
            "exactly-16-bytes",
            "exactly-16-bytez",
            "exactlY-16-bytes",
            "seventeen bytes!!",
            "seventeen-bytes!!",
            "é",
            "e\u{301}",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(super::same_text(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn same_text_agrees_with_equality(a in "[ab]{0,20}", b in "[ab]{0,20}") {
            proptest::prop_assert_eq!(super::same_text(&a, &b), a == b);
        }
    }

    #[test]
    fn keys_tell_strings_apart_as_string_equality_does() {
        let texts = [
            "",
            "a",
            "ab",
            "ba",
            "S",
            "XL",
            "north",
            "rival-mobile",
            "12345678",
            "123456789",
            "1234567x9",
            "loyalty-0000",
            "loyalty-0001",
            "exactly-16-bytes",
            "exactly-16-bytez",
            "seventeen bytes!!",
            "seventeen-bytes!!",
            "a much longer id, head and tail equal",
            "a much longer id, hXad and tail equal",
            "\u{e9}t\u{e9}",
        ];
        for a in texts {
            for b in texts {
                let (ka, kb) = (TextKey::of(a), TextKey::of(b));
                assert_eq!(ka.same(a, kb, b), a == b, "{a:?} vs {b:?}");
                if ka.is_exact() && kb.is_exact() {
                    assert_eq!(ka == kb, a == b, "{a:?} vs {b:?}");
                }
            }
        }
    }
}
