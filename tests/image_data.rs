//! Picture–caption sources: MNIST's idx files and folders of captioned images.

use image::RgbImage;
use seer::data::load_folder;
use seer::data::mnist::{digit_caption, Mnist, DIGIT_WORDS};

#[test]
fn builtin_mnist_has_ten_thousand_labelled_digits() {
    let mnist = Mnist::builtin().unwrap();
    assert_eq!(mnist.len(), 10_000);
    let mut counts = [0usize; 10];
    for i in 0..mnist.len() {
        counts[mnist.label(i) as usize] += 1;
    }
    // MNIST's test set holds 892 to 1135 of each digit.
    assert!(
        counts.iter().all(|&c| (850..1200).contains(&c)),
        "{counts:?}"
    );
    // The first test digit is a seven; drawn centred on 32×32 with a black border.
    assert_eq!(mnist.label(0), 7);
    let picture = mnist.picture(0, 32);
    assert_eq!(picture.dimensions(), (32, 32));
    assert!(picture.get_pixel(0, 0).0 == [0, 0, 0] && picture.get_pixel(31, 31).0 == [0, 0, 0]);
    let ink: u64 = picture.pixels().map(|p| p.0[0] as u64).sum();
    assert!(ink > 10_000, "the digit has ink: {ink}");
    let mut rng = rand::rng();
    let caption = digit_caption(7, &mut rng);
    assert!(
        caption.contains(DIGIT_WORDS[7]) || caption.contains('7'),
        "{caption}"
    );
}

#[test]
fn corrupt_idx_files_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = (dir.path().join("images.idx"), dir.path().join("labels.idx"));
    std::fs::write(
        &images,
        [0u8, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2],
    )
    .unwrap();
    std::fs::write(&labels, [0u8, 0, 8, 1, 0, 0, 0, 1, 3]).unwrap();
    let err = Mnist::load(&images, &labels).unwrap_err().to_string();
    assert!(
        err.contains("images.idx") && err.contains("truncated"),
        "{err}"
    );
    std::fs::write(&images, b"not an idx file at all").unwrap();
    let err = Mnist::load(&images, &labels).unwrap_err().to_string();
    assert!(err.contains("magic"), "{err}");
}

#[test]
fn an_image_folder_loads_captioned_pictures_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let picture = RgbImage::from_pixel(40, 20, image::Rgb([200, 10, 10]));
    picture.save(path.join("red.png")).unwrap();
    std::fs::write(path.join("red.txt"), "a red banner\n").unwrap();
    picture.save(path.join("listed.png")).unwrap();
    std::fs::write(
        path.join("metadata.jsonl"),
        "{\"file_name\": \"listed.png\", \"text\": \"from metadata\"}\n",
    )
    .unwrap();
    picture.save(path.join("uncaptioned.png")).unwrap();
    std::fs::write(path.join("broken.png"), b"\x89PNG but not really").unwrap();
    std::fs::write(path.join("broken.txt"), "never read").unwrap();
    let folder = load_folder(path, 16).unwrap();
    let mut captions: Vec<&str> = folder.pairs.iter().map(|(_, c)| c.as_str()).collect();
    captions.sort();
    assert_eq!(captions, ["a red banner", "from metadata"]);
    assert!(folder.pairs.iter().all(|(p, _)| p.dimensions() == (16, 16)));
    let skipped: Vec<&str> = folder.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(skipped, ["broken.png", "uncaptioned.png"]);
    let empty = tempfile::tempdir().unwrap();
    let err = load_folder(empty.path(), 16).unwrap_err().to_string();
    assert!(err.contains("no usable captioned images"), "{err}");
}
