//! Token shards: round trips in both widths, and corrupt files refused by name.

use seer::data::{write_shard, TokenShard};

#[test]
fn shards_round_trip_in_u16_and_u32() {
    let dir = tempfile::tempdir().unwrap();
    for (vocab, tokens) in [
        (65usize, vec![0u32, 64, 3, 17]),
        (100_000, vec![0, 99_999, 65_536, 7]),
    ] {
        let path = dir.path().join("train.bin");
        write_shard(&path, &tokens, vocab).unwrap();
        let width = if vocab <= 65_536 { 2 } else { 4 };
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            24 + width * tokens.len()
        );
        let shard = TokenShard::open(&path).unwrap();
        assert_eq!(shard.len(), tokens.len());
        let read: Vec<u32> = (0..shard.len()).map(|i| shard.get(i)).collect();
        assert_eq!(read, tokens);
    }
}

#[test]
fn truncated_shard_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("val.bin");
    write_shard(&path, &[1, 2, 3, 4, 5], 65).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let err = TokenShard::open(&path).err().unwrap().to_string();
    assert!(
        err.contains("val.bin") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn wrong_magic_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.bin");
    std::fs::write(&path, b"this is not a shard at all, just text").unwrap();
    let err = TokenShard::open(&path).err().unwrap().to_string();
    assert!(err.contains("train.bin") && err.contains("magic"), "{err}");
}
