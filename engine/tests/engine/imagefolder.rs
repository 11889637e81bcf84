//! The ImageFolder loader on files the test writes: class folders in name order, JPEG and PNG,
//! shorter side resized, centre crop, RGB in [0,1], limits on classes and images per class.

use iscp_engine::data::{load_image_folder, ImageFolderConfig};
use tch::Kind;

fn write(dir: &std::path::Path, class: &str, file: &str, img: image::RgbImage) {
    let d = dir.join(class);
    std::fs::create_dir_all(&d).unwrap();
    img.save(d.join(file)).unwrap();
}

#[test]
fn class_folders_become_labelled_resized_centre_crops() {
    let dir = tempfile::tempdir().unwrap();
    let red = image::RgbImage::from_pixel(300, 200, image::Rgb([255, 0, 0]));
    write(dir.path(), "a_cls", "1.jpg", red.clone());
    write(dir.path(), "a_cls", "2.JPEG", red);
    // Left half black, right half white, 100×50: resized to 80×40, the crop keeps columns 24..56.
    let halves = image::RgbImage::from_fn(100, 50, |x, _| {
        if x < 50 {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    });
    write(dir.path(), "b_cls", "x.png", halves);
    write(dir.path(), "c_cls", "y.png", image::RgbImage::new(64, 64));
    std::fs::write(dir.path().join("b_cls/notes.txt"), "not an image").unwrap();
    let cfg = ImageFolderConfig {
        resize: 40,
        crop: 32,
        classes: Some(2),
        per_class: Some(1),
    };
    let ds = load_image_folder(dir.path(), &cfg).unwrap();
    assert_eq!(ds.images.size(), [2, 3, 32, 32]);
    assert_eq!(ds.labels_vec(), [0, 1]);
    assert_eq!(ds.class_names, ["a_cls", "b_cls"]);
    let red = ds.images.get(0);
    let mean = |t: tch::Tensor| t.mean(Kind::Float).double_value(&[]);
    assert!(mean(red.get(0)) > 0.95 && mean(red.get(1)) < 0.05 && mean(red.get(2)) < 0.05);
    let halves = ds.images.get(1).get(0);
    assert!(
        halves.double_value(&[16, 0]) < 0.05,
        "left edge of the crop is black"
    );
    assert!(halves.double_value(&[16, 31]) > 0.95, "right edge is white");
    let all = load_image_folder(
        dir.path(),
        &ImageFolderConfig {
            classes: None,
            per_class: None,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_eq!(all.labels_vec(), [0, 0, 1, 2]);
    let err = load_image_folder(
        dir.path(),
        &ImageFolderConfig {
            classes: Some(5),
            ..cfg
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("5 classes asked for, 3 class folders found"),
        "{err}"
    );
}
