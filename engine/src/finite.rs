//! Non-finite outputs are errors: a model whose logits (or a search whose mask) hold NaN or Inf
//! cannot be measured, and nothing computed from them may be written as if it were a result.

use crate::{EngineError, Result};
use tch::{Kind, Tensor};

/// `Ok` when every value of `t` is finite; otherwise `EngineError::NonFinite` naming `what`
/// (e.g. "logits of 1000 clean test images") and how many values were NaN and how many ±Inf.
pub fn check_finite(t: &Tensor, what: impl FnOnce() -> String) -> Result<()> {
    if t.numel() == 0 || t.isfinite().all().int64_value(&[]) == 1 {
        return Ok(());
    }
    let nan = t.isnan().sum(Kind::Int64).int64_value(&[]);
    let inf = t.isinf().sum(Kind::Int64).int64_value(&[]);
    Err(EngineError::NonFinite(format!(
        "{}: {nan} NaN and {inf} infinite among {} values",
        what(),
        t.numel()
    )))
}

/// `check_finite` for values already on the host.
pub fn check_finite_slice(v: &[f32], what: impl FnOnce() -> String) -> Result<()> {
    if v.iter().all(|x| x.is_finite()) {
        return Ok(());
    }
    let nan = v.iter().filter(|x| x.is_nan()).count();
    let inf = v.iter().filter(|x| x.is_infinite()).count();
    Err(EngineError::NonFinite(format!(
        "{}: {nan} NaN and {inf} infinite among {} values",
        what(),
        v.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_tensors_pass_and_others_are_counted() {
        assert!(check_finite(&Tensor::from_slice(&[1.0f32, -2.0]), || "x".into()).is_ok());
        assert!(
            check_finite(&Tensor::zeros([0], (Kind::Float, tch::Device::Cpu)), || "x"
                .into())
            .is_ok()
        );
        let bad = Tensor::from_slice(&[1.0f32, f32::NAN, f32::INFINITY, f32::NAN]);
        let e = check_finite(&bad, || "logits".into())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("logits: 2 NaN and 1 infinite among 4 values"),
            "{e}"
        );
        let e = check_finite_slice(&[0.0, f32::NEG_INFINITY], || "mask".into()).unwrap_err();
        assert!(matches!(e, EngineError::NonFinite(_)), "{e}");
    }
}
