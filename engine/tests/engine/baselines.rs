//! Baselines: a class-wise UAP stays in its ε ball and succeeds more as ε grows; Grad-CAM points at
//! the region that drives the logit.

use crate::common;

use iscp_engine::baselines::{class_uap, grad_cam, uap_success, UapConfig};
use iscp_engine::data::stratified_split;
use iscp_engine::model::Model;
use iscp_engine::pattern::binarize;
use tch::{nn, Device, Kind, Tensor};

#[test]
fn uap_stays_in_its_ball_and_succeeds_more_with_larger_eps() {
    let _rng = common::torch_rng();
    let (model, data) = common::trained_small_cnn(4, 3, 4, 2);
    let labels = data.test.labels_vec();
    let split = stratified_split(&labels, 4, 0.2, 0);
    let pool = split.non_target(&labels, 2);
    let mut rates = Vec::new();
    for eps in [8.0, 16.0, 32.0] {
        let eps = eps / 255.0;
        let delta = class_uap(&model, &data.test.images, &pool, 2, &UapConfig::new(eps)).unwrap();
        let max = delta.abs().max().double_value(&[]);
        assert!(max <= eps + 1e-6, "‖δ‖∞ = {max} > ε = {eps}");
        rates.push(uap_success(&model, &data.test, 2, &delta, None).unwrap());
    }
    eprintln!("UAP success at 8, 16, 32/255: {rates:?}");
    assert!(rates[0] <= rates[1] && rates[1] <= rates[2], "{rates:?}");
    assert!(rates[2] > rates[0], "{rates:?}");
}

#[test]
fn grad_cam_points_at_the_region_that_drives_the_logit() {
    let _rng = common::torch_rng();
    // Features: channel 0 is the image's top-left 4×4 quadrant, channel 1 the rest.
    // Logit 1 sums channel 0, logit 0 sums channel 1.
    let quad = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    let _ = quad.narrow(2, 0, 4).narrow(3, 0, 4).fill_(1.0);
    let q = quad.shallow_clone();
    let body = nn::func_t(move |x, _| Tensor::cat(&[x * &q, x * (1.0 - &q)], 1));
    let head = nn::func_t(|a, _| {
        let s = a.sum_dim_intlist([2i64, 3].as_slice(), false, Kind::Float);
        Tensor::stack(&[s.select(1, 1), s.select(1, 0)], 1)
    });
    let meta = common::small_cnn_meta(vec!["0".into(), "1".into()], [1, 8, 8]);
    let model = Model::from_parts(
        nn::VarStore::new(Device::Cpu),
        (Box::new(body), Box::new(head)),
        meta,
    )
    .unwrap();
    let image = Tensor::rand([1, 8, 8], (Kind::Float, Device::Cpu)) * 0.5 + 0.25;
    let cam = grad_cam(&model, &image, 1).unwrap();
    let top = binarize(&cam, 6);
    for (i, &v) in top.iter().enumerate() {
        if v == 1.0 {
            assert!(i / 8 < 4 && i % 8 < 4, "pixel {i} is outside the quadrant");
        }
    }
    assert!(cam
        .iter()
        .enumerate()
        .all(|(i, &v)| v >= 0.0 && (v == 0.0 || (i / 8 < 4 && i % 8 < 4))));
}
