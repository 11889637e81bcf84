//! From a searched mask to patterns: top-k binarisation at every size, attaching, and evaluation
//! (predictive power on the full test set and the held-out split, and the selection loss on D_n).

use crate::data::Dataset;
use crate::finite::check_finite;
use crate::model::Model;
use crate::Result;
use tch::{Kind, Tensor};

/// k = round(size · n), the number of pixels a pattern of `size` keeps.
pub fn pattern_k(size: f64, n: usize) -> usize {
    ((size * n as f64).round() as usize).min(n)
}

/// The binary mask m_γ keeping the k largest values of `mask` (ties: lower flat index first).
pub fn binarize(mask: &[f32], k: usize) -> Vec<f32> {
    let mut order: Vec<usize> = (0..mask.len()).collect();
    order.sort_by(|&a, &b| mask[b].total_cmp(&mask[a]).then(a.cmp(&b)));
    let mut out = vec![0f32; mask.len()];
    for &i in order.iter().take(k) {
        out[i] = 1.0;
    }
    out
}

/// m ⊙ canvas + (1 − m) ⊙ x for a batch `x` (N×C×H×W), canvas (C×H×W) and mask (H×W values, any shape).
pub fn attach(x: &Tensor, canvas: &Tensor, mask: &Tensor) -> Tensor {
    let s = x.size();
    let m = mask.view([1, 1, s[2], s[3]]);
    &m * canvas.unsqueeze(0) + (1.0 - &m) * x
}

/// A pattern to evaluate: its canvas (C×H×W, on the CPU) and its binary mask (H·W values).
pub type Pattern<'p> = (&'p Tensor, &'p [f32]);

/// What one pattern achieves.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternEval {
    /// Share of non-target test images predicted as the target once the pattern is attached.
    pub acc_with_pattern: f64,
    /// The same, on the held-out split only.
    pub acc_with_pattern_heldout: f64,
    /// Accuracy of the model on clean target-class test images (full set, held-out split).
    pub original_class_acc: f64,
    pub original_class_acc_heldout: f64,
    /// acc_with_pattern / original_class_acc (NaN when the denominator is 0).
    pub pw: f64,
    pub pw_heldout: f64,
    /// Mean cross-entropy towards the target over D_n with the pattern attached.
    pub selection_loss: f64,
}

/// A model and its test set prepared once for evaluating many patterns.
pub struct Evaluator<'a> {
    pub model: &'a Model,
    pub test: &'a Dataset,
    labels: Vec<i64>,
    clean_pred: Vec<i64>,
    in_search: Vec<bool>,
    /// Images per forward pass: `with_batch`'s, halved each time the device ran out of memory.
    batch: std::cell::Cell<i64>,
    halvings: std::cell::Cell<u32>,
    precision: crate::amp::Precision,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

impl<'a> Evaluator<'a> {
    /// `clean_logits` are the model's test-set logits; `search` the test indices of the search subset.
    pub fn new(model: &'a Model, test: &'a Dataset, clean_logits: &Tensor, search: &[i64]) -> Self {
        let labels = test.labels_vec();
        let clean_pred = Vec::try_from(clean_logits.argmax(1, false)).unwrap_or_default();
        let mut in_search = vec![false; labels.len()];
        for &i in search {
            in_search[i as usize] = true;
        }
        Evaluator {
            model,
            test,
            labels,
            clean_pred,
            in_search,
            batch: std::cell::Cell::new(1024),
            halvings: std::cell::Cell::new(0),
            precision: crate::amp::Precision::Fp32,
        }
    }

    /// Images per forward pass (default 1024).
    pub fn with_batch(self, batch: i64) -> Self {
        self.batch.set(batch.max(1));
        self
    }

    /// The arithmetic of the forward passes (fp16 autocast on CUDA).
    pub fn with_precision(mut self, precision: crate::amp::Precision) -> Self {
        self.precision = precision;
        self
    }

    /// How many times the forward batch was halved after the device ran out of memory.
    pub fn oom_halvings(&self) -> u32 {
        self.halvings.get()
    }

    /// Accuracy on clean target-class images: (full, held-out).
    pub fn class_accuracy(&self, target: i64) -> (f64, f64) {
        let (mut n, mut c, mut nh, mut ch) = (0, 0, 0, 0);
        for (i, &l) in self.labels.iter().enumerate() {
            if l == target {
                let ok = (self.clean_pred[i] == target) as usize;
                n += 1;
                c += ok;
                if !self.in_search[i] {
                    nh += 1;
                    ch += ok;
                }
            }
        }
        (ratio(c as f64, n as f64), ratio(ch as f64, nh as f64))
    }

    /// Attaches each pattern to the test images at `rows` and returns, per pattern and row, whether
    /// the model predicts `target` and the cross-entropy towards it. Patterns share forward passes:
    /// the (pattern, row) pairs go through the model `batch` at a time.
    fn attached(
        &self,
        rows: &[i64],
        target: i64,
        patterns: &[Pattern],
    ) -> Result<Vec<Vec<(bool, f64)>>> {
        let mut out: Vec<Vec<(bool, f64)>> = patterns
            .iter()
            .map(|_| Vec::with_capacity(rows.len()))
            .collect();
        if patterns.is_empty() || rows.is_empty() {
            return Ok(out);
        }
        let s = self.test.images.size();
        let canvases = Tensor::stack(&patterns.iter().map(|p| p.0).collect::<Vec<_>>(), 0);
        let masks = Tensor::stack(
            &patterns
                .iter()
                .map(|p| Tensor::from_slice(p.1).view([1, s[2], s[3]]))
                .collect::<Vec<_>>(),
            0,
        );
        let items: Vec<(i64, i64)> = (0..patterns.len() as i64)
            .flat_map(|p| rows.iter().map(move |&r| (p, r)))
            .collect();
        tch::no_grad(|| -> Result<()> {
            let mut start = 0;
            while start < items.len() {
                let end = (start + self.batch.get() as usize).min(items.len());
                let chunk = &items[start..end];
                let logits = match self.forward(&canvases, &masks, chunk, target) {
                    Err(e) if e.is_out_of_memory() && chunk.len() > 1 => {
                        // Retry the same images at half the batch, and keep the smaller batch.
                        self.batch.set((chunk.len() / 2).max(1) as i64);
                        self.halvings.set(self.halvings.get() + 1);
                        continue;
                    }
                    other => other?,
                };
                let pred: Vec<i64> = Vec::try_from(logits.argmax(1, false))?;
                let nll: Vec<f32> =
                    Vec::try_from(-logits.log_softmax(1, Kind::Float).select(1, target))?;
                for ((&(p, _), &pr), &l) in chunk.iter().zip(&pred).zip(&nll) {
                    out[p as usize].push((pr == target, l as f64));
                }
                start = end;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Logits (on the CPU, checked finite) of the test images of `chunk`'s (pattern, row) pairs
    /// with their patterns attached.
    fn forward(
        &self,
        canvases: &Tensor,
        masks: &Tensor,
        chunk: &[(i64, i64)],
        target: i64,
    ) -> Result<Tensor> {
        let owner = Tensor::from_slice(&chunk.iter().map(|i| i.0).collect::<Vec<_>>());
        let at = Tensor::from_slice(&chunk.iter().map(|i| i.1).collect::<Vec<_>>());
        let x = self.test.images.index_select(0, &at);
        let m = masks.index_select(0, &owner);
        let mixed: Tensor = &m * canvases.index_select(0, &owner) + (1.0 - &m) * x;
        let mixed = mixed.to_device(self.model.device());
        let logits =
            crate::amp::logits_in(self.model, &mixed, self.precision)?.to_device(tch::Device::Cpu);
        check_finite(&logits, || {
            format!(
                "the logits of {} test images with a class-{target} pattern attached",
                chunk.len()
            )
        })?;
        Ok(logits)
    }

    /// Mean cross-entropy towards `target` over D_n (the search subset minus the class) with the
    /// pattern attached: what selects the best canvas. Touches only D_n.
    pub fn selection_loss(&self, target: i64, canvas: &Tensor, binary_mask: &[f32]) -> Result<f64> {
        Ok(self.selection_losses(target, &[(canvas, binary_mask)])?[0])
    }

    /// `selection_loss` of many patterns for one target, in shared batches.
    pub fn selection_losses(&self, target: i64, patterns: &[Pattern]) -> Result<Vec<f64>> {
        Ok(self
            .search_scores(target, patterns)?
            .iter()
            .map(|s| s.selection_loss)
            .collect())
    }

    /// Test rows of the other classes, on D_n (`search`) or on the held-out split.
    fn non_target_rows(&self, target: i64, search: bool) -> Vec<i64> {
        (0..self.labels.len() as i64)
            .filter(|&i| self.labels[i as usize] != target && self.in_search[i as usize] == search)
            .collect()
    }

    /// What each pattern reaches on D_n (its selection loss and its hits there), in shared
    /// batches: the first half of an evaluation, and all that choosing the best canvas needs.
    pub fn search_scores(&self, target: i64, patterns: &[Pattern]) -> Result<Vec<SearchScore>> {
        let rows = self.non_target_rows(target, true);
        Ok(self
            .attached(&rows, target, patterns)?
            .iter()
            .map(|r| SearchScore {
                selection_loss: ratio(r.iter().map(|x| x.1).sum(), r.len() as f64),
                hits: r.iter().filter(|x| x.0).count(),
                rows: r.len(),
            })
            .collect())
    }

    /// Completes the evaluation of patterns already scored on D_n (`scores`, in the same order):
    /// only the held-out images go through the model, the D_n hits are counted again from
    /// `scores`, so a pattern's full-set and held-out PW cost one forward pass per test image.
    pub fn complete(
        &self,
        target: i64,
        patterns: &[Pattern],
        scores: &[SearchScore],
    ) -> Result<Vec<PatternEval>> {
        if patterns.len() != scores.len() {
            return Err(crate::EngineError::Invalid(format!(
                "{} patterns with {} search scores",
                patterns.len(),
                scores.len()
            )));
        }
        let rows = self.non_target_rows(target, false);
        let (orig, orig_h) = self.class_accuracy(target);
        let held = self.attached(&rows, target, patterns)?;
        Ok(held
            .iter()
            .zip(scores)
            .map(|(r, s)| {
                let hits_h = r.iter().filter(|x| x.0).count();
                let acc = ratio((s.hits + hits_h) as f64, (s.rows + r.len()) as f64);
                let acc_h = ratio(hits_h as f64, r.len() as f64);
                PatternEval {
                    acc_with_pattern: acc,
                    acc_with_pattern_heldout: acc_h,
                    original_class_acc: orig,
                    original_class_acc_heldout: orig_h,
                    pw: ratio(acc, orig),
                    pw_heldout: ratio(acc_h, orig_h),
                    selection_loss: s.selection_loss,
                }
            })
            .collect())
    }

    /// Evaluates the pattern `binary_mask ⊙ canvas` for `target` on every non-target test image.
    pub fn evaluate(
        &self,
        target: i64,
        canvas: &Tensor,
        binary_mask: &[f32],
    ) -> Result<PatternEval> {
        Ok(self
            .evaluate_many(target, &[(canvas, binary_mask)])?
            .remove(0))
    }

    /// `evaluate` for many patterns of one target, in shared batches: `search_scores`, then
    /// `complete`.
    pub fn evaluate_many(&self, target: i64, patterns: &[Pattern]) -> Result<Vec<PatternEval>> {
        let scores = self.search_scores(target, patterns)?;
        self.complete(target, patterns, &scores)
    }
}

/// What a pattern reaches on D_n: the mean cross-entropy towards the target (what selects the
/// best canvas) and how many of D_n's images it turns into the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchScore {
    pub selection_loss: f64,
    pub hits: usize,
    pub rows: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binarize_keeps_exactly_k_with_ties_by_index() {
        let m = [0.5, 0.9, 0.5, 0.5, 0.1, 0.9];
        assert_eq!(binarize(&m, 3), vec![1.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(binarize(&m, 4), vec![1.0, 1.0, 1.0, 0.0, 0.0, 1.0]);
        assert_eq!(binarize(&m, 0).iter().sum::<f32>(), 0.0);
        let flat = vec![0.5f32; 100];
        let b = binarize(&flat, 7);
        assert_eq!(b.iter().sum::<f32>(), 7.0);
        assert!(b[..7].iter().all(|&v| v == 1.0));
    }

    #[test]
    fn k_rounds_size_times_n() {
        assert_eq!(pattern_k(0.01, 784), 8);
        assert_eq!(pattern_k(0.05, 784), 39);
        assert_eq!(pattern_k(0.01, 1024), 10);
        assert_eq!(pattern_k(1.0, 10), 10);
    }
}
