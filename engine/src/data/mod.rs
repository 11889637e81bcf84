//! Datasets as N×C×H×W float tensors in [0,1] with labels and class names, and their loaders.

mod cifar;
mod dataset;
mod idx;
mod imagefolder;
mod pickle;
mod split;
mod synthetic;
mod torch_file;

pub use cifar::{load_cifar10_dir, read_cifar_batch};
pub use dataset::{DataSplits, Dataset};
pub use idx::{load_idx_dir, load_idx_pair, read_idx};
pub use imagefolder::{load_image, load_image_folder, ImageFolderConfig};
pub use split::{stratified_split, Split};
pub use synthetic::{synthetic, SyntheticConfig};
pub use torch_file::{load_tensor_dataset, load_torch_tensor};

/// Class names of Fashion-MNIST, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
];

/// Class names of CIFAR-10, in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
