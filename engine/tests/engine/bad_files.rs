//! Broken IDX and CIFAR-10 files give clear errors naming the problem, never a panic.

use iscp_engine::data::{load_cifar10_dir, load_idx_pair, read_cifar_batch, read_idx};
use std::io::Write;
use std::path::Path;

fn idx_bytes(magic_type: u8, dims: &[u32], data_len: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, magic_type];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend(std::iter::repeat_n(7u8, data_len));
    b
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_reads_raw_and_gzip() {
    let d = tempfile::tempdir().unwrap();
    let raw = idx_bytes(3, &[2, 4, 4], 32);
    let a = read_idx(&write(d.path(), "a", &raw), 3).unwrap();
    let b = read_idx(&write(d.path(), "b.gz", &gz(&raw)), 3).unwrap();
    assert_eq!(a.dims, vec![2, 4, 4]);
    assert_eq!(a.data, b.data);
}

#[test]
fn idx_truncated_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "t", &idx_bytes(3, &[2, 4, 4], 20));
    let e = read_idx(&p, 3).unwrap_err().to_string();
    assert!(
        e.contains("truncated") && e.contains("32") && e.contains("20"),
        "{e}"
    );
    let p = write(d.path(), "h", &[0, 0, 8, 3, 0, 0]);
    assert!(read_idx(&p, 3)
        .unwrap_err()
        .to_string()
        .contains("truncated"));
    let full = gz(&idx_bytes(3, &[2, 4, 4], 32));
    let p = write(d.path(), "g.gz", &full[..full.len() / 2]);
    assert!(read_idx(&p, 3).unwrap_err().to_string().contains("gzip"));
}

#[test]
fn idx_wrong_magic_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "m", &idx_bytes(1, &[5], 5));
    let e = read_idx(&p, 3).unwrap_err().to_string();
    assert!(e.contains("magic"), "{e}");
    let mut b = idx_bytes(3, &[1, 2, 2], 4);
    b[2] = 0x0D; // float data, not unsigned bytes
    assert!(read_idx(&write(d.path(), "f", &b), 3)
        .unwrap_err()
        .to_string()
        .contains("magic"));
}

#[test]
fn idx_count_mismatch_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let im = write(d.path(), "im", &idx_bytes(3, &[3, 2, 2], 12));
    let lb = write(d.path(), "lb", &idx_bytes(1, &[2], 2));
    let e = load_idx_pair(&im, &lb, None).unwrap_err().to_string();
    assert!(e.contains("2 labels for 3 images"), "{e}");
}

#[test]
fn cifar_truncated_and_bad_labels_are_reported() {
    let d = tempfile::tempdir().unwrap();
    let mut rec = vec![3u8];
    rec.extend(vec![100u8; 3072]);
    let mut two = rec.clone();
    two.extend(&rec);
    assert_eq!(
        read_cifar_batch(&write(d.path(), "ok.bin", &two))
            .unwrap()
            .1,
        vec![3, 3]
    );
    let e = read_cifar_batch(&write(d.path(), "t.bin", &two[..5000]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("truncated"), "{e}");
    let mut bad = rec.clone();
    bad[0] = 12;
    let e = read_cifar_batch(&write(d.path(), "l.bin", &bad))
        .unwrap_err()
        .to_string();
    assert!(e.contains("label 12"), "{e}");
    let e = load_cifar10_dir(d.path()).unwrap_err().to_string();
    assert!(e.contains("data_batch_1.bin"), "{e}");
}

#[test]
fn cifar_folder_loads() {
    let d = tempfile::tempdir().unwrap();
    let mut batch = Vec::new();
    for label in 0..10u8 {
        batch.push(label);
        batch.extend(vec![label * 20; 3072]);
    }
    write(d.path(), "data_batch_1.bin", &batch);
    write(d.path(), "test_batch.bin", &batch[..3073 * 4]);
    let s = load_cifar10_dir(d.path()).unwrap();
    assert_eq!(s.train.len(), 10);
    assert_eq!(s.test.len(), 4);
    assert_eq!(s.train.image_shape(), [3, 32, 32]);
    assert_eq!(s.train.labels_vec(), (0..10).collect::<Vec<i64>>());
    let px = s.train.images.double_value(&[9, 2, 31, 31]);
    assert!((px - 180.0 / 255.0).abs() < 1e-6);
}
