//! One search step of each objective on a tiny linear model, checked against values computed by hand.

use iscp_engine::model::{Arch, Model, ModelMeta};
use iscp_engine::search::{step, Objective, SearchConfig};
use tch::{nn, nn::Module, Device, Kind, Tensor};

const N: usize = 4; // 1×2×2 images
const K: usize = 2;
const W: [[f64; N]; K] = [[0.3, -0.2, 0.5, 0.1], [-0.4, 0.6, -0.1, 0.2]];
const B: [f64; K] = [0.05, -0.05];

fn tiny_model() -> Model {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut lin = nn::linear(vs.root() / "fc", N as i64, K as i64, Default::default());
    tch::no_grad(|| {
        let w: Vec<f32> = W.iter().flatten().map(|&v| v as f32).collect();
        lin.ws
            .copy_(&Tensor::from_slice(&w).view([K as i64, N as i64]));
        lin.bs
            .as_mut()
            .unwrap()
            .copy_(&Tensor::from_slice(&B.map(|v| v as f32)));
    });
    let net = nn::func_t(move |x, _| lin.forward(&x.flatten(1, -1)));
    let meta = ModelMeta {
        arch: Arch::SmallCnn,
        class_names: vec!["a".into(), "b".into()],
        input_shape: [1, 2, 2],
        normalize: None,
        test_accuracy: None,
    };
    Model::from_module(vs, Box::new(net), meta).unwrap()
}

/// dL_ce/dm_i summed over images, for the mean (scale 1/B) or sum (scale 1) of cross-entropies.
fn ce_grad(m: &[f64; N], c: &[f64; N], xs: &[[f64; N]], y: usize, scale: f64) -> [f64; N] {
    let mut g = [0.0; N];
    for x in xs {
        let mixed: Vec<f64> = (0..N).map(|i| m[i] * c[i] + (1.0 - m[i]) * x[i]).collect();
        let logits: Vec<f64> = (0..K)
            .map(|k| B[k] + (0..N).map(|i| W[k][i] * mixed[i]).sum::<f64>())
            .collect();
        let z: f64 = logits.iter().map(|l| l.exp()).sum();
        for k in 0..K {
            let d = logits[k].exp() / z - if k == y { 1.0 } else { 0.0 };
            for i in 0..N {
                g[i] += scale * d * W[k][i] * (c[i] - x[i]);
            }
        }
    }
    g
}

fn run_step(objective: Objective, alpha: f64, lr: f64) -> (Vec<f32>, [f64; N]) {
    let model = tiny_model();
    let m0 = [0.5, 0.9, 0.02, 0.3];
    let c = [1.0, 0.2, 0.7, 0.0];
    let xs = [[0.1, 0.8, 0.3, 0.6], [0.9, 0.0, 0.4, 0.2]];
    let mut mask = Tensor::from_slice(&m0.map(|v| v as f32))
        .view([1, 1, 2, 2])
        .set_requires_grad(true);
    let canvas = Tensor::from_slice(&c.map(|v| v as f32)).view([1, 2, 2]);
    let flat: Vec<f32> = xs.iter().flatten().map(|&v| v as f32).collect();
    let xn = Tensor::from_slice(&flat).view([2, 1, 2, 2]);
    let cfg = SearchConfig {
        objective,
        alpha,
        lr,
        ..Default::default()
    };
    step(&model, &mut mask, &canvas, &xn, 1, &cfg).unwrap();
    let got: Vec<f32> = Vec::try_from(mask.detach().flatten(0, -1).to_kind(Kind::Float)).unwrap();
    let b = xs.len() as f64;
    let n = N as f64;
    let expected = match objective {
        Objective::Paper => {
            let g = ce_grad(&m0, &c, &xs, 1, 1.0);
            std::array::from_fn(|i| (m0[i] - lr * (g[i] + b * alpha / n)).clamp(0.0, 1.0))
        }
        Objective::Released => {
            let g = ce_grad(&m0, &c, &xs, 1, alpha / b);
            std::array::from_fn(|i| {
                (m0[i] - lr * (g[i] + (1.0 - alpha) / (n / 2.0)).signum()).clamp(0.0, 1.0)
            })
        }
    };
    (got, expected)
}

#[test]
fn paper_objective_takes_a_plain_gradient_step() {
    // A large step so that the clamp at 0 and 1 is exercised too.
    let (got, expected) = run_step(Objective::Paper, 0.2, 0.5);
    for i in 0..N {
        assert!(
            (got[i] as f64 - expected[i]).abs() < 1e-5,
            "pixel {i}: {got:?} vs {expected:?}"
        );
    }
    assert!(
        got.iter()
            .zip(&[0.5f32, 0.9, 0.02, 0.3])
            .any(|(a, b)| (a - b).abs() > 1e-3),
        "the step moved nothing"
    );
}

#[test]
fn released_objective_takes_a_signed_step() {
    let (got, expected) = run_step(Objective::Released, 0.2, 0.02);
    for i in 0..N {
        assert!(
            (got[i] as f64 - expected[i]).abs() < 1e-6,
            "pixel {i}: {got:?} vs {expected:?}"
        );
    }
    // Every unclamped pixel moved by exactly ±η.
    for (g, m) in got.iter().zip([0.5f32, 0.9, 0.02, 0.3]) {
        assert!(((g - m).abs() - 0.02).abs() < 1e-6 || *g == 0.0 || *g == 1.0);
    }
}
