//! Per-decoder caps (`zip.max_decoder_memory`): LZMA dictionaries, xz LZMA2 dictionaries
//! and zstd windows over the cap are refused with a 501 naming it, before the decoder
//! allocates; bzip2 is bounded by its format; entries at or under the cap decode
//! byte-exact; and a limit met after the head went out aborts the transfer.

use std::time::Duration;

use async_compression::tokio::bufread::{BzEncoder, XzEncoder, ZstdEncoder};
use async_compression::Level;
use futures_util::StreamExt;

use super::streams::{read_all, text, xz_by_hand, zip_lzma, zstd_by_hand};
use super::{setup, Entry, BZIP2, CAP, LZMA, MIB, XZ, ZSTD};
use crate::support::within;

/// Defect 3: a few KiB of LZMA declaring a 4 GiB dictionary took 2.1 GB per request and
/// 8.2 GB for four. Four concurrent requests must each be refused before the decoder
/// allocates, the gateway staying under 100 MiB.
#[tokio::test]
async fn lzma_4gib_dictionary_allocated_per_request() {
    let content = vec![0u8; 32 * MIB];
    let bomb = Entry::new(
        "bomb.bin",
        LZMA,
        &content,
        zip_lzma(&content, Some(u32::MAX)).await,
    );
    let s = setup(&[bomb], CAP).await;
    s.gateway.reset_peak();
    within(Duration::from_secs(20), "four 4 GiB LZMA requests", async {
        let requests = (0..4).map(|_| s.expect_refused("bomb.bin", "LZMA dictionary of 4 GiB"));
        futures_util::future::join_all(requests).await;
    })
    .await;
    eprintln!("peak RSS {} KiB", s.gateway.peak_rss_kib());
    s.gateway
        .assert_peak_below(100, "four concurrent 4 GiB-dictionary LZMA requests");
}

/// Defect 3 for xz: the LZMA2 dictionary in the first block header is checked before the
/// decoder exists.
#[tokio::test]
async fn xz_large_lzma2_dictionary_allocated_as_declared() {
    let content = text(MIB);
    let entries = [
        Entry::new("4g.bin", XZ, &content, xz_by_hand(&[(40, &content)])),
        Entry::new("64m.bin", XZ, &content, xz_by_hand(&[(28, &content)])),
    ];
    let s = setup(&entries, CAP).await;
    s.gateway.reset_peak();
    within(Duration::from_secs(20), "xz bombs", async {
        s.expect_refused("4g.bin", "xz LZMA2 dictionary of 4 GiB")
            .await;
        s.expect_refused("64m.bin", "xz LZMA2 dictionary of 64 MiB")
            .await;
    })
    .await;
    eprintln!("peak RSS {} KiB", s.gateway.peak_rss_kib());
    s.gateway.assert_peak_below(100, "xz bombs");
}

/// Defect 3 for zstd: a window of 2^27 took 130 MB per stream (zstd's own default limit
/// allows it); 2^30 and 2^31 were refused only by zstd's default, as a 502 naming nothing.
#[tokio::test]
async fn zstd_window_2_27_took_130mb_per_stream() {
    let content = vec![b'z'; 32 * MIB];
    let entries = [
        Entry::new("w27.bin", ZSTD, &content, zstd_by_hand(0x88, &content)),
        Entry::new("w30.bin", ZSTD, &content, zstd_by_hand(0xA0, &content)),
        Entry::new("w31.bin", ZSTD, &content, zstd_by_hand(0xA8, &content)),
    ];
    let s = setup(&entries, CAP).await;
    s.gateway.reset_peak();
    within(Duration::from_secs(20), "zstd bombs", async {
        let requests = (0..4).map(|_| s.expect_refused("w27.bin", "zstd window of 128 MiB"));
        futures_util::future::join_all(requests).await;
        s.expect_refused("w30.bin", "zstd window of 1 GiB").await;
        s.expect_refused("w31.bin", "zstd window of 2 GiB").await;
    })
    .await;
    eprintln!("peak RSS {} KiB", s.gateway.peak_rss_kib());
    s.gateway
        .assert_peak_below(100, "four concurrent 2^27-window zstd requests");
}

/// bzip2 needs no header check to stay bounded: the format caps blocks at 900k (3.4 MiB of
/// decoder memory). A level-9 entry decodes byte-exact under the 8 MiB cap within a
/// small peak, and a cap below what its block needs refuses it like any other method.
#[tokio::test]
async fn bzip2_level_9_memory_is_bounded_by_the_format() {
    let content = text(4 * MIB);
    let data = read_all(BzEncoder::with_quality(&content[..], Level::Best)).await;
    assert_eq!(&data[..4], b"BZh9", "the writer used 900k blocks");
    let entries = [Entry::new("level9.bin", BZIP2, &content, data)];
    let s = setup(&entries, CAP).await;
    s.gateway.reset_peak();
    within(
        Duration::from_secs(30),
        "four concurrent bzip2 -9 entries",
        async {
            let requests = (0..4).map(|_| s.expect_exact("level9.bin", &content));
            futures_util::future::join_all(requests).await;
        },
    )
    .await;
    eprintln!("peak RSS {} KiB", s.gateway.peak_rss_kib());
    s.gateway
        .assert_peak_below(100, "four concurrent bzip2 level 9 entries");
    drop(s);

    let tight = setup(&entries, "[zip]\nmax_decoder_memory = \"2MiB\"\n").await;
    let response = tight.get("level9.bin").await;
    assert_eq!(response.status(), 501);
    let message = crate::common::json(response).await["message"].to_string();
    assert!(
        message.contains("bzip2 block of 3.4 MiB exceeds zip.max_decoder_memory (2 MiB)"),
        "{message}"
    );
}

/// The caps refuse only what is over them: small-dictionary entries of every method,
/// written by the real encoders, still decode byte-exact (and a window or dictionary of
/// exactly the cap is allowed).
#[tokio::test]
async fn small_dictionary_entries_of_each_method_decode_byte_exact() {
    let content = text(3 * MIB);
    let entries = [
        Entry::new("a.lzma", LZMA, &content, zip_lzma(&content, None).await),
        Entry::new(
            "a.xz",
            XZ,
            &content,
            read_all(XzEncoder::with_quality(&content[..], Level::Precise(1))).await,
        ),
        Entry::new(
            "a.zst",
            ZSTD,
            &content,
            read_all(ZstdEncoder::with_quality(&content[..], Level::Default)).await,
        ),
        Entry::new(
            "a.bz2",
            BZIP2,
            &content,
            read_all(BzEncoder::with_quality(&content[..], Level::Precise(1))).await,
        ),
        Entry::new(
            "cap.lzma",
            LZMA,
            &content,
            zip_lzma(&content, Some(8 << 20)).await,
        ),
        Entry::new("cap.xz", XZ, &content, xz_by_hand(&[(22, &content)])),
        Entry::new("cap.zst", ZSTD, &content, zstd_by_hand(0x68, &content)),
    ];
    let s = setup(&entries, CAP).await;
    within(Duration::from_secs(30), "valid entries", async {
        for name in [
            "a.lzma", "a.xz", "a.zst", "a.bz2", "cap.lzma", "cap.xz", "cap.zst",
        ] {
            s.expect_exact(name, &content).await;
        }
    })
    .await;
}

/// A limit hit after the head went out: an xz stream whose second block asks for a
/// larger dictionary than the first (which is what was reserved) aborts the transfer; what
/// arrived is a prefix of the true content, never a wrong byte.
#[tokio::test]
async fn xz_later_block_over_the_limit_aborts_the_transfer() {
    let first = text(512 * 1024);
    let second = text(256 * 1024);
    let content = [first.clone(), second.clone()].concat();
    let data = xz_by_hand(&[(16, &first), (22, &second)]);
    let s = setup(&[Entry::new("two.xz", XZ, &content, data)], CAP).await;
    within(Duration::from_secs(20), "two-block xz", async {
        let response = s.get("two.xz").await;
        assert_eq!(
            response.status(),
            200,
            "the first block decodes before the head"
        );
        assert_eq!(response.content_length(), Some(content.len() as u64));
        let mut body = response.bytes_stream();
        let mut received = Vec::new();
        let mut failed = false;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => received.extend_from_slice(&chunk),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "the transfer is aborted, not completed");
        assert!(received.len() < content.len());
        assert!(
            content.starts_with(&received),
            "the bytes sent are the content's"
        );
    })
    .await;
    s.gateway
        .wait_for_log(|l| l.contains("xz stream needs more than"))
        .await;
}
