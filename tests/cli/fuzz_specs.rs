//! Malformed specs (wrong types, out-of-range and non-finite numbers, huge counts, missing files,
//! hostile names): `iscp run` refuses each with exit 1 and the key named, under a memory cap and a
//! timeout (no panic, abort or hang), and a real coordinator that is sent every one of them
//! refuses each and is still serving afterwards.

use crate::cluster::Cluster;
use crate::helpers::{run_words, tiny_spec};
use std::path::Path;
use std::process::{Command, Output};

/// A BadNets setting appended to the tiny spec's settings (`{}`: its extra keys).
fn badnets(extra: &str) -> String {
    tiny_spec("", "[0.2]").replace(
        "[search]",
        &format!(
            "[[settings]]\nname = \"bad\"\nkind = \"badnets\"\ntarget = 1\n{extra}\n\n[search]"
        ),
    )
}

/// The tiny spec with a `[population]` table (whose scans need size 0.01 in `sizes`).
fn population(body: &str) -> String {
    tiny_spec("", "[0.2]").replace("sizes = [0.02, 0.1]", "sizes = [0.01, 0.1]")
        + &format!("\n[population]\n{body}\n")
}

/// `(what, spec text, the key its refusal must name)`. `dir` holds the files some cases name.
fn cases(dir: &Path) -> Vec<(&'static str, String, &'static str)> {
    let base = || tiny_spec("", "[0.2]");
    let with = |from: &str, to: &str| {
        let b = base();
        assert!(b.contains(from), "{from} not in the tiny spec");
        b.replace(from, to)
    };
    let search = |extra: &str| tiny_spec(extra, "[0.2]");
    let train = |t: &str| with("train = { epochs = 1, batch = 32, lr = 0.05 }", t);
    let run = |r: &str| base() + "\n[run]\n" + r + "\n";
    let empty = dir.join("empty.pt");
    let dotted = vec!["a"; 10_000].join(".") + " = 1";
    let many = |n: usize, v: &str| format!("[{}]", vec![v; n].join(", "));
    vec![
        // Wrong types.
        ("classes as a string", with("classes = 3", "classes = \"three\""), "classes"),
        ("size as a float", with("size = 16", "size = 16.5"), "size"),
        ("negative seed", with("seed = 1", "seed = -1"), "seed"),
        ("epochs as a string", search("").replace("epochs = 1\n", "epochs = \"one\"\n"), "epochs"),
        ("alphas not a list", tiny_spec("", "0.2"), "alphas"),
        ("sizes of strings", with("sizes = [0.02, 0.1]", "sizes = [\"a\"]"), "sizes"),
        ("unknown data kind", with("kind = \"synthetic\"", "kind = \"synthetc\""), "kind"),
        ("unknown setting kind", with("kind = \"natural\"", "kind = \"natral\""), "kind"),
        ("name as a number", with("name = \"tiny\"", "name = 5"), "name"),
        ("unknown canvas kind", with("kind = \"positive\"", "kind = \"positve\""), "canvases"),
        ("unknown key", search("sizez = [0.1]"), "sizez"),
        ("a key of 10,000 parts", base() + &dotted, "nested too deeply"),
        // Out of range and non-finite numbers.
        ("size nan", with("sizes = [0.02, 0.1]", "sizes = [nan]"), "search.sizes"),
        ("size inf", with("sizes = [0.02, 0.1]", "sizes = [inf]"), "search.sizes"),
        ("size of 0 pixels", with("sizes = [0.02, 0.1]", "sizes = [1e-9]"), "search.sizes"),
        ("negative size", with("sizes = [0.02, 0.1]", "sizes = [-0.1]"), "search.sizes"),
        ("alpha nan", tiny_spec("", "[nan]"), "search.alphas"),
        ("alpha 2", tiny_spec("", "[2.0]"), "search.alphas"),
        ("search lr nan", search("lr = nan"), "search.lr"),
        ("search lr inf", search("lr = inf"), "search.lr"),
        ("search lr 0", search("lr = 0.0"), "search.lr"),
        ("search lr negative", search("lr = -1.0"), "search.lr"),
        ("search epochs 0", search("").replace("epochs = 1\n", "epochs = 0\n"), "search.epochs"),
        ("search batch 0", search("batch = 0"), "search.batch"),
        ("search batch huge", search("batch = 10000000"), "search.batch"),
        ("search epochs huge", search("").replace("epochs = 1\n", "epochs = 100000000\n"), "search.epochs"),
        ("subset fraction 1", search("subset_fraction = 1.0"), "search.subset_fraction"),
        ("subset fraction nan", search("subset_fraction = nan"), "search.subset_fraction"),
        ("tv beta nan", search("tv_betas = [nan]"), "search.tv_betas"),
        ("train epochs 0", train("train = { epochs = 0 }"), "settings[0].train.epochs"),
        ("train batch 0", train("train = { batch = 0 }"), "settings[0].train.batch"),
        ("train lr nan", train("train = { lr = nan }"), "settings[0].train.lr"),
        ("train lr 0", train("train = { lr = 0.0 }"), "settings[0].train.lr"),
        ("train lr inf", train("train = { lr = inf }"), "settings[0].train.lr"),
        ("momentum 1.5", train("train = { momentum = 1.5 }"), "settings[0].train.momentum"),
        ("weight decay -1", train("train = { weight_decay = -1.0 }"), "settings[0].train.weight_decay"),
        ("trigger size 0", badnets("trigger_size = 0"), "settings[1].trigger_size"),
        ("trigger size 1000", badnets("trigger_size = 1000"), "settings[1].trigger_size"),
        ("trigger larger than the image", badnets("trigger_size = 12").replace("size = 16", "size = 8"), "settings[1].trigger_size"),
        ("poison rate nan", badnets("poison_rate = nan"), "settings[1].poison_rate"),
        ("poison rate 1.5", badnets("poison_rate = 1.5"), "settings[1].poison_rate"),
        ("eval batch 0", run("eval_batch = 0"), "run."),
        ("eval batch huge", run("eval_batch = 1000000000"), "run.eval_batch"),
        ("threads 0", run("threads = 0"), "run.threads"),
        ("threads huge", run("threads = 100000"), "run.threads"),
        ("device cuda:x", run("device = \"cuda:x\""), "run.device"),
        ("device tpu", run("device = \"tpu\""), "run.device"),
        ("batch searches 0", run("batch_searches = 0"), "run.batch_searches"),
        ("normalize std 0", train("train = { epochs = 1 }\nnormalize = { mean = [0.5], std = [0.0] }"), "settings[0].normalize"),
        ("uap eps nan", base() + "\n[baselines]\nuap_eps = [nan]\n", "baselines"),
        ("scan size not searched", base() + "\n[scan]\nsize = 0.5\n", "scan.size"),
        // Huge counts.
        ("a billion classes", with("classes = 3", "classes = 1000000000"), "data.classes"),
        ("one class", with("classes = 3", "classes = 1"), "data.classes"),
        ("image side 100000", with("size = 16", "size = 100000"), "data.size"),
        ("a trillion training images", with("train = 600", "train = 1000000000000"), "data.train"),
        ("no test images", with("test = 240", "test = 0"), "data.test"),
        ("two channels", with("size = 16", "size = 16\nchannels = 2"), "data.channels"),
        ("a trillion canvases", with("n = 2", "n = 1000000000000"), "search.canvases"),
        ("2,000 alphas", tiny_spec("", &many(2000, "0.2")), "search.alphas"),
        ("5,000 sizes", with("sizes = [0.02, 0.1]", &format!("sizes = {}", many(5000, "0.1"))), "search.sizes"),
        ("30 million units", tiny_spec("", &many(1000, "0.2")).replace("n = 2", "n = 10000"), "search"),
        ("every-class BadNets × huge grid", badnets("").replace("target = 1", "targets = \"all\"").replace("classes = 3", "classes = 10").replace("n = 2", "n = 9000").replace("alphas = [0.2]", &format!("alphas = {}", many(100, "0.2"))), "search"),
        ("a billion clean models", population("clean = 1000000000"), "population.clean"),
        ("a billion BadNets models", population("badnets = 1000000000"), "population.badnets"),
        ("population trigger sides 2-100", population("badnets = 2\ntrigger_sizes = [2, 100]"), "population.trigger_sizes"),
        ("population poison rate nan", population("badnets = 2\npoison_rates = [nan, 0.1]"), "population.poison_rates"),
        ("population calibration nan", population("clean = 2\ncalibration_share = nan"), "population.calibration_share"),
        ("cleanse epochs 0", population("clean = 2\ncleanse = { epochs = 0 }"), "population.cleanse"),
        // Hostile names.
        ("class names too few", with("classes = 3", "classes = 3\nclass_names = [\"a\", \"b\"]"), "data.class_names"),
        ("class name with an escape", with("classes = 3", "classes = 3\nclass_names = [\"a\", \"\\u001b[31mred\", \"c\"]"), "data.class_names"),
        ("class name with a tab", with("classes = 3", "classes = 3\nclass_names = [\"a\", \"b\\tc\", \"c\"]"), "data.class_names"),
        ("setting name with a newline", with("name = \"natural\"", "name = \"nat\\nural\""), "settings[0].name"),
        ("setting name of 1,000 characters", with("name = \"natural\"", &format!("name = \"{}\"", "n".repeat(1000))), "settings[0].name"),
        ("setting name with a path", with("name = \"natural\"", "name = \"../../etc\""), "settings[0].name"),
        ("experiment name with a path", with("name = \"tiny\"", "name = \"../x\""), "name"),
        // Missing and hostile files.
        ("data folder missing", with("kind = \"synthetic\"", "kind = \"fashion-mnist\"\npath = \"/nonexistent/fm\""), "data.path"),
        ("model file missing", with("kind = \"natural\"", "kind = \"natural\"\nmodel = \"/nonexistent/m.pt\""), "settings[0].model"),
        ("model file of 0 bytes", with("kind = \"natural\"", &format!("kind = \"natural\"\nmodel = {:?}", empty.display().to_string())), "settings[0].model"),
        ("population folder missing", population("given = \"/nonexistent/models\""), "population.given"),
        ("manifest /dev/zero", population(&format!("given = {:?}\nmanifest = \"/dev/zero\"", dir.display().to_string())), "population.given"),
        ("derive from itself", base().replace("[search]", "[[settings]]\nname = \"dr\"\nkind = \"natural\"\nderive = { from = \"dr\" }\n\n[search]"), "settings[1].derive"),
        ("derive 0 steps", base().replace("[search]", "[[settings]]\nname = \"dr\"\nkind = \"natural\"\nderive = { from = \"natural\", steps = 0 }\n\n[search]"), "settings[1].derive"),
    ]
}

/// `iscp ARGS` under a 6 GiB address-space cap and a 60 s timeout.
fn capped(args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["-s", "KILL", "60", "prlimit", "--as=6442450944", "--"])
        .arg(env!("CARGO_BIN_EXE_iscp"))
        .args(args)
        .env_remove("ISCP_TOKEN")
        .output()
        .expect("timeout, prlimit and iscp run")
}

fn files(dir: &Path) {
    std::fs::write(dir.join("empty.pt"), b"").unwrap();
    std::fs::write(dir.join("a.pt"), b"not empty").unwrap();
}

#[test]
fn malformed_specs_are_refused_with_their_key_and_crash_nothing() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let all = cases(dir.path());
    assert!(all.len() >= 60, "only {} cases", all.len());
    let results = dir.path().join("results");
    let mut wrong = Vec::new();
    for (i, (what, text, key)) in all.iter().enumerate() {
        let spec = dir.path().join(format!("case{i}.toml"));
        std::fs::write(&spec, text).unwrap();
        let mut args = run_words(&spec, &results);
        args.push("--quiet");
        let out = capped(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(1) || !err.contains(key) || err.len() > 8_000 {
            wrong.push(format!(
                "{what}: exit {:?} (want 1, naming `{key}`): {}",
                out.status.code(),
                err.chars().take(600).collect::<String>()
            ));
        }
    }
    assert!(!results.exists(), "a refused spec wrote results");
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        all.len(),
        wrong.join("\n")
    );
}

#[test]
fn a_coordinator_sent_every_malformed_spec_refuses_each_and_keeps_serving() {
    let mut c = Cluster::new();
    files(c.dir.path());
    let mut coord = c.coordinator(&[]);
    let mut wrong = Vec::new();
    for (i, (what, text, key)) in cases(c.dir.path()).iter().enumerate() {
        // Files a spec names live where the workers run: the coordinator cannot check them.
        if ["data.path", "settings[0].model"].contains(key) {
            continue;
        }
        let (out, text) = c.try_submit(&format!("case{i}.toml"), text);
        if out.status.success() || !text.contains(key) {
            wrong.push(format!(
                "{what}: {}",
                text.chars().take(400).collect::<String>()
            ));
        }
        assert!(
            coord.child.try_wait().unwrap().is_none(),
            "the coordinator died at `{what}`:\n{}",
            coord.log()
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Still serving: a good spec is accepted.
    c.submit("good", &tiny_spec("", "[0.2]"));
    assert!(c.status().contains("tiny"), "{}", c.status());
    coord.term();
}
