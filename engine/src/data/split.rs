//! The seeded, class-stratified split of the test set into the search subset and the held-out rest.

use crate::rng::Rng;

/// Test-set indices: `search` (the fraction D_n is drawn from) and `heldout` (the rest), both sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub search: Vec<i64>,
    pub heldout: Vec<i64>,
}

/// Takes `round(fraction · count)` images of every class into `search`, chosen by a seeded shuffle.
pub fn stratified_split(labels: &[i64], num_classes: usize, fraction: f64, seed: u64) -> Split {
    let mut search = Vec::new();
    let mut heldout = Vec::new();
    for class in 0..num_classes as i64 {
        let mut idx: Vec<i64> = (0..labels.len() as i64)
            .filter(|&i| labels[i as usize] == class)
            .collect();
        Rng::new(crate::rng::mix(&[seed, class as u64])).shuffle(&mut idx);
        let take = (fraction * idx.len() as f64).round() as usize;
        search.extend_from_slice(&idx[..take]);
        heldout.extend_from_slice(&idx[take..]);
    }
    search.sort_unstable();
    heldout.sort_unstable();
    Split { search, heldout }
}

impl Split {
    /// D_n for target `class`: the search subset minus that class.
    pub fn non_target(&self, labels: &[i64], class: i64) -> Vec<i64> {
        self.search
            .iter()
            .copied()
            .filter(|&i| labels[i as usize] != class)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_disjoint_and_complete() {
        let labels: Vec<i64> = (0..1000).map(|i| (i % 10) as i64).collect();
        let s = stratified_split(&labels, 10, 0.2, 3);
        assert_eq!(s.search.len(), 200);
        assert_eq!(s.heldout.len(), 800);
        for c in 0..10 {
            assert_eq!(
                s.search
                    .iter()
                    .filter(|&&i| labels[i as usize] == c)
                    .count(),
                20
            );
        }
        let mut all: Vec<i64> = s.search.iter().chain(&s.heldout).copied().collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(s, stratified_split(&labels, 10, 0.2, 3));
        assert_ne!(s, stratified_split(&labels, 10, 0.2, 4));
        assert!(s
            .non_target(&labels, 3)
            .iter()
            .all(|&i| labels[i as usize] != 3));
    }
}
