//! `iscp bench`: seconds per ISCP search for the small CNN on this machine (a benchmark, not a test).

use iscp_engine::canvas::canvas_image;
use iscp_engine::data::{
    load_idx_dir, stratified_split, synthetic, SyntheticConfig, FASHION_MNIST_CLASSES,
};
use iscp_engine::model::{Arch, Model, ModelMeta};
use iscp_engine::search::{search, SearchConfig};
use iscp_engine::train::{train, TrainConfig};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Fashion-MNIST folder (IDX files); synthetic 28×28 data is used when it is missing.
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    pub data: PathBuf,
    /// How many searches to time.
    #[arg(long, default_value_t = 4)]
    pub searches: usize,
    /// Device to measure (cpu, cuda, cuda:N).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// libtorch intra-op threads (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let device = iscp_engine::parse_device(&a.device)?;
    if let Some(t) = a.threads {
        tch::set_num_threads(t as i32);
    }
    let (data, source) = match load_idx_dir(
        &a.data,
        Some(
            FASHION_MNIST_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
    ) {
        Ok(d) => (d, format!("Fashion-MNIST from {}", a.data.display())),
        Err(e) => {
            eprintln!("bench: {e}; using synthetic 28×28 data instead");
            let cfg = SyntheticConfig {
                size: 28,
                train: 6000,
                test: 10000,
                ..Default::default()
            };
            (synthetic(&cfg)?, "synthetic 28×28".into())
        }
    };
    println!(
        "machine: {} ({} logical cores), libtorch threads {}, device {}",
        cpu_model(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        tch::get_num_threads(),
        a.device
    );
    println!("data: {source}; {} test images", data.test.len());
    tch::manual_seed(0);
    let meta = ModelMeta {
        arch: Arch::SmallCnn,
        class_names: data.train.class_names.clone(),
        input_shape: data.train.image_shape(),
        normalize: None,
        test_accuracy: None,
    };
    let mut model = Model::new_builtin(meta, device)?;
    let t0 = Instant::now();
    train(
        &mut model,
        &data.train,
        &TrainConfig {
            epochs: 1,
            ..Default::default()
        },
        &mut |_, _, _| {},
    )?;
    println!(
        "train small CNN, 1 epoch on {} images: {:.1}s",
        data.train.len(),
        t0.elapsed().as_secs_f64()
    );
    let labels = data.test.labels_vec();
    let split = stratified_split(&labels, data.test.num_classes(), 0.2, 0);
    let mut per_search = Vec::new();
    for i in 0..a.searches {
        let class = (i % data.test.num_classes()) as i64;
        let pool = data
            .test
            .subset(&split.non_target(&labels, class))
            .images
            .to_device(device);
        let canvas = canvas_image(&data.test, -1)?;
        let t = Instant::now();
        let out = search(
            &model,
            &canvas,
            &pool,
            class,
            &SearchConfig::default(),
            &mut |_, _| {},
        )?;
        per_search.push(t.elapsed().as_secs_f64());
        println!(
            "search {} (class {class}, {} images in D_n, {} steps): {:.2}s",
            i + 1,
            pool.size()[0],
            out.steps,
            per_search[i]
        );
    }
    let mean = per_search.iter().sum::<f64>() / per_search.len().max(1) as f64;
    println!("seconds per search (T=5, B=4, small CNN): {mean:.2}");
    Ok(())
}
