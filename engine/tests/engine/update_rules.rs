//! One search step of each objective on a tiny linear model, checked against values computed by hand.

use crate::common;

use iscp_engine::model::Model;
use iscp_engine::search::{search_batch, Objective, SearchConfig, SearchJob};
use tch::Tensor;

const N: usize = 4; // 1×2×2 images
const K: usize = 2;
const W: [[f64; N]; K] = [[0.3, -0.2, 0.5, 0.1], [-0.4, 0.6, -0.1, 0.2]];
const B: [f64; K] = [0.05, -0.05];

fn tiny_model() -> Model {
    let w: Vec<f32> = W.iter().flatten().map(|&v| v as f32).collect();
    common::linear_model(&w, &B.map(|v| v as f32), [1, 2, 2])
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
    let m0 = [0.5; N];
    let c = [1.0, 0.2, 0.7, 0.0];
    let xs = [[0.1, 0.8, 0.3, 0.6], [0.9, 0.0, 0.4, 0.2]];
    let canvas = Tensor::from_slice(&c.map(|v| v as f32)).view([1, 2, 2]);
    let flat: Vec<f32> = xs.iter().flatten().map(|&v| v as f32).collect();
    let xn = Tensor::from_slice(&flat).view([2, 1, 2, 2]);
    // One epoch of one minibatch holding both images: exactly one step from the initial mask.
    let cfg = SearchConfig {
        objective,
        alpha,
        lr,
        epochs: 1,
        batch: 2,
        seed: 0,
        ..Default::default()
    };
    let job = SearchJob {
        target: 1,
        canvas,
        pool: vec![0, 1],
        cfg,
    };
    let got = search_batch(&model, &xn, &[job], &mut |_, _| {})
        .remove(0)
        .unwrap()
        .mask;
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
    let _serial = common::lanes_serial();
    // A small step moves pixels inside (0,1); a large one is clamped at the bounds.
    for (lr, clamped) in [(0.5, false), (5.0, true)] {
        let (got, expected) = run_step(Objective::Paper, 0.2, lr);
        for i in 0..N {
            assert!(
                (got[i] as f64 - expected[i]).abs() < 1e-5,
                "η {lr}, pixel {i}: {got:?} vs {expected:?}"
            );
        }
        assert!(
            got.iter().all(|&a| (a - 0.5).abs() > 1e-3),
            "η {lr}: a pixel did not move: {got:?}"
        );
        assert_eq!(
            got.iter().any(|&a| a == 0.0 || a == 1.0),
            clamped,
            "η {lr}: {got:?}"
        );
    }
}

#[test]
fn released_objective_takes_a_signed_step() {
    let _serial = common::lanes_serial();
    let (got, expected) = run_step(Objective::Released, 0.2, 0.02);
    for i in 0..N {
        assert!(
            (got[i] as f64 - expected[i]).abs() < 1e-6,
            "pixel {i}: {got:?} vs {expected:?}"
        );
    }
    // Every pixel moved by exactly ±η.
    for g in &got {
        assert!(((g - 0.5).abs() - 0.02).abs() < 1e-6, "{got:?}");
    }
}
