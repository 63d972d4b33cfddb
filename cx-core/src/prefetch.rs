//! Asking the processor for memory ahead of its use.

/// Asks the processor to fetch every cache line `items` spans, for a read soon after. Only
/// addresses are computed: no item is read, so a slice not in the caches costs no wait here.
pub(crate) fn prefetch_lines<T>(items: &[T]) {
    const LINE: usize = 64;
    let step = (LINE / std::mem::size_of::<T>().max(1)).max(1);
    for item in items.iter().step_by(step) {
        mem_prefetch::prefetch_read_data::<_, 3>(item);
    }
}
