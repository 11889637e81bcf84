//! What the worker's tests share: the text of a small synthetic spec.

/// A spec named `name` drawn from `seed`: 3 classes of 12×12 synthetic shapes (`train` and `test`
/// images), one natural setting trained for an epoch, and searches of `canvases` (a TOML array)
/// at α 0.2 for one epoch, size 0.05.
pub fn spec(name: &str, seed: u64, train: usize, test: usize, canvases: &str) -> String {
    format!(
        "name = \"{name}\"\nseed = {seed}\n\n\
         [data]\nkind = \"synthetic\"\nclasses = 3\nsize = 12\ntrain = {train}\ntest = {test}\n\n\
         [[settings]]\nname = \"natural\"\nkind = \"natural\"\n\
         train = {{ epochs = 1, batch = 32, lr = 0.05 }}\n\n\
         [search]\ncanvases = {canvases}\nalphas = [0.2]\nepochs = 1\nsizes = [0.05]\n"
    )
}
