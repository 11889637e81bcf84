//! Shared test fixtures: hand-made linear models whose outputs can be computed by hand.
#![allow(dead_code)] // each test binary uses some of these

use iscp_engine::data::{synthetic, DataSplits, Dataset, SyntheticConfig};
use iscp_engine::model::{Arch, Model, ModelMeta};
use iscp_engine::train::{train, TrainConfig};
use tch::{nn, nn::Module, Device, Tensor};

/// A small CNN's metadata for `class_names` and inputs of `input_shape`: no normalisation, no
/// accuracy.
pub fn small_cnn_meta(class_names: Vec<String>, input_shape: [i64; 3]) -> ModelMeta {
    ModelMeta {
        arch: Arch::SmallCnn,
        class_names,
        input_shape,
        normalize: None,
        test_accuracy: None,
    }
}

/// Synthetic one-channel `size`×`size` shapes of `classes` classes, `train` and `test` images,
/// drawn from `seed`.
pub fn shapes(classes: usize, size: usize, train: usize, test: usize, seed: u64) -> DataSplits {
    synthetic(&SyntheticConfig {
        classes,
        size,
        channels: 1,
        train,
        test,
        seed,
    })
    .unwrap()
}

/// Training for `epochs` in batches of `batch`, the rest as `TrainConfig::default()`.
pub fn training(epochs: usize, batch: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch,
        ..Default::default()
    }
}

/// `fresh_small_cnn(data, seed)`, trained on `data` with `cfg`.
pub fn small_cnn_trained_on(data: &Dataset, seed: i64, cfg: &TrainConfig) -> Model {
    let mut model = fresh_small_cnn(data, seed);
    train(&mut model, data, cfg, &mut |_, _, _| {}).unwrap();
    model
}

/// logits = W · flatten(x) + b for inputs of `shape`, with W given row-major (classes × pixels).
pub fn linear_model(w: &[f32], b: &[f32], shape: [i64; 3]) -> Model {
    let n = shape.iter().product::<i64>();
    let k = b.len() as i64;
    let vs = nn::VarStore::new(Device::Cpu);
    // Constant initial weights: building the fixture draws nothing from libtorch's generator.
    let cfg = nn::LinearConfig {
        ws_init: nn::Init::Const(0.0),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    let mut lin = nn::linear(vs.root() / "fc", n, k, cfg);
    tch::no_grad(|| {
        lin.ws.copy_(&Tensor::from_slice(w).view([k, n]));
        lin.bs.as_mut().expect("bias").copy_(&Tensor::from_slice(b));
    });
    let net = nn::func_t(move |x, _| lin.forward(&x.flatten(1, -1)));
    let meta = small_cnn_meta((0..k).map(|i| i.to_string()).collect(), shape);
    Model::from_module(vs, Box::new(net), meta).expect("fixture model")
}

/// An untrained small CNN for `data`'s classes and image shape, its weights drawn from `seed`.
pub fn fresh_small_cnn(data: &Dataset, seed: i64) -> Model {
    tch::manual_seed(seed);
    let meta = small_cnn_meta(data.class_names.clone(), data.image_shape());
    Model::new_builtin(meta, Device::Cpu).expect("small CNN")
}

/// A small CNN trained for `epochs` on synthetic 1×16×16 shapes of `classes` classes.
pub fn trained_small_cnn(
    classes: usize,
    data_seed: u64,
    model_seed: i64,
    epochs: usize,
) -> (Model, DataSplits) {
    tch::set_num_threads(2);
    let data = shapes(classes, 16, 200 * classes, 60 * classes, data_seed);
    let model = small_cnn_trained_on(&data.train, model_seed, &training(epochs, 32));
    (model, data)
}

/// Held by every test that seeds libtorch's process-wide generator and draws from it (building a
/// model, training, random tensors): tests run on parallel threads, and another test's draw
/// between a seed and its use would change the weights (a trained fixture once came out unable
/// to move a mask). Take it after `lanes_serial` in tests that need both.
pub fn torch_rng() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held by tests that run batched searches in lanes: the lanes change libtorch's process-wide
/// thread count for their length, which a test checking the count after its own batch would see.
pub fn lanes_serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `lanes_serial` and then `torch_rng` (the order every test that needs both takes them in).
pub fn lanes_and_rng() -> (
    std::sync::MutexGuard<'static, ()>,
    std::sync::MutexGuard<'static, ()>,
) {
    let serial = lanes_serial();
    (serial, torch_rng())
}

/// Near-ties allowed at a size's boundary: 2.5 signed steps of the default η = 0.02.
pub const TIE: f32 = 0.05;
/// Largest PW difference allowed between two runs of one search.
pub const PW_TOLERANCE: f64 = 0.1;

/// Asserts that masks `a` and `b` of `job` (the same search, run in batches of other shapes or on
/// other threads) select the same pixels at 1/2/3/5/10% up to near-ties, and reach PW within
/// `PW_TOLERANCE` on `test`. Never compares raw floats: those differ across CPUs.
pub fn assert_masks_agree(
    model: &Model,
    test: &iscp_engine::data::Dataset,
    job: &iscp_engine::search::SearchJob,
    a: &[f32],
    b: &[f32],
    what: &str,
) {
    use iscp_engine::agreement::{compare, same_selection, SIZES};
    use iscp_engine::pattern::{pattern_k, Evaluator};
    for size in SIZES {
        let k = pattern_k(size, a.len());
        if let Err(e) = same_selection(a, b, k, TIE) {
            panic!("{what}: the masks select other pixels at size {size}: {e}");
        }
    }
    let logits = model.predict_logits(&test.images, 1024).unwrap();
    let eval = Evaluator::new(model, test, &logits, &[]);
    for s in compare(a, b, &SIZES, Some((&eval, job.target, &job.canvas))).unwrap() {
        let d = s.pw_difference.unwrap();
        assert!(
            d <= PW_TOLERANCE,
            "{what}: PW differs by {d:.3} at size {} (Jaccard {:.2})",
            s.size,
            s.jaccard
        );
    }
}
