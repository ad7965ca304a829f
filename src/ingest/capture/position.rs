//! Which packet of which capture file this thread is processing, so that a panic can name
//! it and a user can send a reproducer. Set once per packet (one thread-local store); read
//! only by the panic hook.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;

thread_local! {
    static FILES: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
    /// (file index in the merge, packet number in that file from 1, byte offset of its
    /// record).
    static AT: Cell<Option<(usize, u64, u64)>> = const { Cell::new(None) };
}

/// The files of the merge now being read, in merge order.
pub(crate) fn set_files(paths: Vec<PathBuf>) {
    FILES.with(|f| *f.borrow_mut() = paths);
    AT.with(|a| a.set(None));
}

/// The packet now handed to the stages.
#[inline]
pub(crate) fn at(file: usize, packet: u64, offset: u64) {
    AT.with(|a| a.set(Some((file, packet, offset))));
}

/// The reading is over: what happens next is not about one packet.
pub(crate) fn clear() {
    AT.with(|a| a.set(None));
}

/// "packet N of FILE (record at byte offset X)", or `None` outside the packet loop.
pub fn describe() -> Option<String> {
    let (index, packet, offset) = AT.with(Cell::get)?;
    let file = FILES.with(|f| f.borrow().get(index).map(|p| p.display().to_string()))?;
    Some(format!(
        "packet {packet} of {file} (record at byte offset {offset} of the decompressed capture)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_file_packet_and_offset_being_processed() {
        set_files(vec![PathBuf::from("a.pcap"), PathBuf::from("b.pcapng")]);
        assert_eq!(describe(), None);
        at(1, 27, 4096);
        assert_eq!(
            describe().as_deref(),
            Some("packet 27 of b.pcapng (record at byte offset 4096 of the decompressed capture)")
        );
        clear();
        assert_eq!(describe(), None);
    }
}
