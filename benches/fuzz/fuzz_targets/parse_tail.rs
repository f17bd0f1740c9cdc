#![no_main]
//! The first two bytes choose the tail length; the rest is the object. Every requested
//! range is answered from the object; the parse must never panic, ask more than three
//! times, or ask for bytes outside the object, and a finished index must be consistent.
//! The same parse with the directory pushed in pieces (of a size derived from the tail
//! length) must give the same outcome.
use artifact_gateway::archive::index::{
    parse_directory, parse_tail, IndexLimits, TailOutcome, ZipError, ZipIndex,
};
use libfuzzer_sys::fuzz_target;

/// Runs the read loop; `piece` > 0 streams a directory read in pieces of that size.
fn drive(object: &[u8], start: usize, piece: usize) -> Result<ZipIndex, ZipError> {
    let size = object.len() as u64;
    let limits = IndexLimits::default();
    let mut outcome = parse_tail(&object[start..], start as u64, size, &limits)?;
    let mut reads = 0;
    loop {
        let (range, pending) = match outcome {
            TailOutcome::Complete(index) => return Ok(index),
            TailOutcome::NeedRange { range, pending } => (range, pending),
        };
        reads += 1;
        assert!(reads <= 3, "asked more than three times");
        assert!(
            range.start <= range.end && range.end <= size,
            "range outside the object"
        );
        let bytes = &object[range.start as usize..range.end as usize];
        if piece == 0 {
            outcome = parse_directory(bytes, pending, &limits)?;
            continue;
        }
        outcome = match pending.into_directory() {
            Ok(mut parser) => {
                for chunk in bytes.chunks(piece) {
                    if !parser.wants_bytes() {
                        break;
                    }
                    parser.push(chunk)?;
                }
                parser.finish()?
            }
            Err(pending) => parse_directory(bytes, pending, &limits)?,
        };
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, object)) = data.split_first_chunk::<2>() else {
        return;
    };
    let tail_len = usize::from(u16::from_le_bytes(*head)).min(object.len());
    let start = object.len() - tail_len;
    let whole = drive(object, start, 0);
    let streamed = drive(object, start, tail_len % 61 + 1);
    match (&whole, &streamed) {
        (Ok(a), Ok(b)) => {
            assert!(a.names().eq(b.names()), "streamed names differ");
            assert!(a.names().all(|n| a.get(n) == b.get(n)), "streamed entries differ");
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "streamed error differs"),
        _ => panic!("streamed {streamed:?}, whole {whole:?}"),
    }
    if let Ok(index) = whole {
        let directory = index.directory_range();
        assert!(directory.end <= object.len() as u64);
        for name in index.names() {
            let e = index.get(name).expect("a listed name resolves");
            assert!(e.local_header_offset + 30 + e.compressed_size <= e.data_end);
            assert!(e.data_end <= directory.start);
        }
    }
});
