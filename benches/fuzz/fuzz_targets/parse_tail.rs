#![no_main]
//! The first two bytes choose the tail length; the rest is the object. Every requested
//! range is answered from the object; the parse must never panic, ask more than three
//! times, or ask for bytes outside the object, and a finished index must be consistent.
use artifact_gateway::zip::index::{parse_directory, parse_tail, IndexLimits, TailOutcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, object)) = data.split_first_chunk::<2>() else {
        return;
    };
    let tail_len = usize::from(u16::from_le_bytes(*head)).min(object.len());
    let size = object.len() as u64;
    let start = object.len() - tail_len;
    let limits = IndexLimits::default();
    let mut outcome = parse_tail(&object[start..], start as u64, size, &limits);
    let mut reads = 0;
    while let Ok(TailOutcome::NeedRange { range, pending }) = outcome {
        reads += 1;
        assert!(reads <= 3, "asked more than three times");
        assert!(
            range.start <= range.end && range.end <= size,
            "range outside the object"
        );
        outcome = parse_directory(
            &object[range.start as usize..range.end as usize],
            pending,
            &limits,
        );
    }
    if let Ok(TailOutcome::Complete(index)) = outcome {
        let directory = index.directory_range();
        assert!(directory.end <= size);
        for name in index.names() {
            let e = index.get(name).expect("a listed name resolves");
            assert!(e.local_header_offset + 30 + e.compressed_size <= e.data_end);
            assert!(e.data_end <= directory.start);
        }
    }
});
