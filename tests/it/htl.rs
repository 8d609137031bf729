//! Hard-to-learn samples: the PIE rule, pruning and fine-tuning, the weighted loss, attention
//! weights, loaders and files.

use sparsefield::compute::control::RunControl;
use sparsefield::compute::htl::attend::{self, AttendConfig, Schedule};
use sparsefield::compute::htl::data::{self, AttributeSpec, HtlSource, Split};
use sparsefield::compute::htl::mlp::Mlp;
use sparsefield::compute::htl::pie::{self, RankBy};
use sparsefield::compute::htl::population::{self, PopulationConfig};
use sparsefield::compute::htl::{HtlError, files};
use sparsefield::compute::image_io::{self, ImageData};

use super::common::temp_dir;

#[test]
fn pie_rule_on_a_hand_made_vote_table() {
    // Three samples, three dense and three pruned models, classes 0–2; label of every sample 0.
    let dense: [&[u16]; 3] = [&[0, 1, 2], &[0, 1, 1], &[0, 2, 0]];
    let pruned: [&[u16]; 3] = [&[0, 2, 0], &[1, 2, 1], &[0, 2, 2]];
    let dense_loss: [&[f32]; 3] = [&[0.1, 1.0, 2.0], &[0.2, 1.0, 2.0], &[0.3, 1.0, 2.0]];
    let pruned_loss: [&[f32]; 3] = [&[0.4, 3.0, 1.0], &[0.5, 3.0, 1.0], &[0.6, 3.0, 1.0]];
    let labels = [0, 0, 0];
    let groups = [0, 1, 1];
    let scores = pie::score_samples((&dense, &dense_loss), (&pruned, &pruned_loss), &labels, &groups, 3);
    // Sample 0: dense votes {0: 3}, pruned {0: 2, 1: 1} → modes 0 and 0, not a PIE.
    assert_eq!(scores[0].dense_votes, vec![3, 0, 0]);
    assert_eq!(scores[0].pruned_votes, vec![2, 1, 0]);
    assert_eq!((scores[0].dense_mode, scores[0].pruned_mode, scores[0].pie), (0, 0, false));
    assert!((scores[0].disagreement - 1.0 / 3.0).abs() < 1e-12);
    assert!((scores[0].pruned_error - 1.0 / 3.0).abs() < 1e-12);
    assert!((scores[0].dense_loss - 0.2).abs() < 1e-6);
    assert!((scores[0].pruned_loss - 0.5).abs() < 1e-6);
    // Sample 1: dense {1: 2, 2: 1} → 1; pruned {2: 3} → 2: a PIE, every pruned model disagrees.
    assert_eq!((scores[1].dense_mode, scores[1].pruned_mode, scores[1].pie), (1, 2, true));
    assert!((scores[1].disagreement - 1.0).abs() < 1e-12);
    assert!((scores[1].dense_error - 1.0).abs() < 1e-12);
    // Sample 2: dense {0: 1, 1: 1, 2: 1} is a three-way tie → class 0; pruned {0: 1, 1: 1, 2: 1} → 0 too.
    assert_eq!((scores[2].dense_mode, scores[2].pruned_mode, scores[2].pie), (0, 0, false));
    assert_eq!(pie::modal(&[0, 2, 2]), 1, "ties go to the lower class");
    assert_eq!(scores[1].group, 1);

    // Ranking: the PIE first, then sample 2 (two of three pruned models leave the dense modal
    // class 0) before sample 0 (one of three).
    assert_eq!(pie::rank(&scores, RankBy::Pie), vec![1, 2, 0]);
    assert_eq!(pie::rank(&scores, RankBy::PrunedLoss), vec![1, 2, 0]);
    // Loss gap: 2.0, −1.0, 0.3.
    assert_eq!(pie::rank(&scores, RankBy::LossGap), vec![1, 0, 2]);
    let rates = pie::rates(&scores, &["a".into(), "b".into()], |s| usize::from(s.group));
    assert_eq!((rates[0].hard, rates[0].total, rates[1].hard, rates[1].total), (0, 1, 1, 2));
}

#[test]
fn weighted_loss_and_gradient_match_the_formula_and_finite_differences() {
    let mlp = Mlp::new(5, 6, 3, 7);
    let n = 4;
    let x: Vec<f32> = (0..n * 5).map(|i| ((i * 37 % 11) as f32 / 11.0) - 0.4).collect();
    let labels = [0_u16, 2, 1, 2];
    let weights = [1.0_f32, 3.0, 0.5, 2.0];
    let mut grads = vec![0.0; mlp.params.len()];
    let loss = mlp.loss_and_gradient(&x, &labels, &weights, &mut grads);
    // The formula: (1/n) Σ wᵢ ℓᵢ with ℓᵢ from the logits.
    let logits = mlp.logits(&x, n);
    let expected: f64 = logits
        .chunks(3)
        .zip(&labels)
        .zip(&weights)
        .map(|((row, &l), &w)| {
            let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            f64::from(w) * (lse - row[usize::from(l)])
        })
        .sum::<f64>()
        / n as f64;
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    // Central differences on every parameter.
    let h = 1e-2_f32;
    let mut scratch = vec![0.0; mlp.params.len()];
    let mut worst = 0.0_f64;
    for (k, &analytic) in grads.iter().enumerate() {
        let mut plus = mlp.clone();
        plus.params[k] += h;
        let mut minus = mlp.clone();
        minus.params[k] -= h;
        let numeric = (plus.loss_and_gradient(&x, &labels, &weights, &mut scratch)
            - minus.loss_and_gradient(&x, &labels, &weights, &mut scratch))
            / (2.0 * f64::from(h));
        worst = worst.max((numeric - f64::from(analytic)).abs());
    }
    assert!(worst < 2e-3, "largest gradient error {worst}");
}

#[test]
fn pruning_reaches_the_sparsity_and_fine_tuning_keeps_it() {
    let data = data::builtin_digits().with_train_limit(300);
    let config =
        PopulationConfig { models: 2, hidden: 32, epochs: 15, finetune_epochs: 3, sparsity: 0.7, ..Default::default() };
    let pops = population::train_populations(&data, &config, &RunControl::new(), &|_| {}).unwrap().unwrap();
    assert_eq!(pops.pairs.len(), 2);
    for pair in &pops.pairs {
        for (l, &(fan_in, fan_out)) in pair.pruned.mlp.shapes().iter().enumerate() {
            let n = (fan_in * fan_out) as f64;
            let want = (0.7 * n).round() / n;
            let got = pair.pruned.mlp.layer_sparsity()[l];
            assert!((got - want).abs() < 1e-9, "layer {l}: {got} vs {want}");
        }
        assert!(pair.dense.mlp.layer_sparsity().iter().all(|&s| s < 0.01));
        // The pruned model is a fine-tuned copy of the dense one: kept weights moved.
        assert_ne!(pair.pruned.mlp.params, pair.dense.mlp.params);
        assert!(pair.pruned.test.accuracy > 0.5, "pruned accuracy {}", pair.pruned.test.accuracy);
    }
    assert_ne!(pops.pairs[0].dense.mlp.params, pops.pairs[1].dense.mlp.params, "seeds differ");
}

#[test]
fn a_seeded_run_finds_hard_samples_that_over_represent_the_minority_group() {
    let data = data::builtin_digits();
    let (standard, faint) = (0_u16, 1_u16);
    assert_eq!(data.groups[usize::from(faint)], "faint scan");
    let pops = population::train_populations(&data, &PopulationConfig::default(), &RunControl::new(), &|_| {})
        .unwrap()
        .unwrap();
    let scores = pie::score_split(&pops, &data, Split::Train);
    let (_, groups) = pie::class_and_group_rates(&scores, &data);
    let hard = scores.iter().filter(|s| s.pie).count();
    assert!(hard > 0, "no PIE among the training samples");
    let minority_share = groups[usize::from(faint)].total as f64 / scores.len() as f64;
    let minority_hard = scores.iter().filter(|s| s.pie && s.group == faint).count() as f64 / hard as f64;
    assert!(minority_share < 0.2, "the faint group should be a minority, is {minority_share}");
    assert!(
        minority_hard > 2.0 * minority_share,
        "faint scans are {minority_share:.2} of the samples but {minority_hard:.2} of the hard ones"
    );
    assert!(groups[usize::from(faint)].fraction() > groups[usize::from(standard)].fraction());

    // Plain retraining from the same seeds reproduces the dense population exactly.
    let plain = attend::train_weighted_population(
        &data,
        &pops.config,
        &vec![false; data.data.train.len()],
        None,
        &RunControl::new(),
        &|_, _| {},
    )
    .unwrap()
    .unwrap();
    for (p, pair) in plain.iter().zip(&pops.pairs) {
        assert_eq!(p.mlp.params, pair.dense.mlp.params);
    }

    // Attending to the hard samples changes the models and fits the hard training samples better.
    let hard_train = attend::hard_set(&scores, &AttendConfig::default());
    let hard_test: Vec<bool> = pie::score_split(&pops, &data, Split::Test).iter().map(|s| s.pie).collect();
    let plain_refs = pops.dense();
    let comparison = attend::compare(
        &data,
        &pops.config,
        &AttendConfig { weight: 5.0, ..AttendConfig::default() },
        &hard_train,
        &hard_test,
        &plain_refs,
        &RunControl::new(),
        &|_, _| {},
    )
    .unwrap()
    .unwrap();
    assert_eq!(comparison.hard_train_count, hard);
    assert!(
        comparison.attended.hard_train > comparison.plain.hard_train,
        "hard training accuracy {} attended vs {} plain",
        comparison.attended.hard_train,
        comparison.plain.hard_train
    );
    assert_eq!(comparison.plain.per_group.len(), 2);
    assert!((comparison.plain.mean - pops.dense().iter().map(|t| t.test.accuracy).sum::<f64>() / 5.0).abs() < 1e-12);
}

#[test]
fn attention_weights_follow_the_schedule_and_the_hard_set() {
    let hard = [true, false, true];
    let constant = AttendConfig { weight: 4.0, schedule: Schedule::Constant, top_fraction: 0.0 };
    assert_eq!(attend::sample_weights(&hard, &constant, 0, 10), vec![4.0, 1.0, 4.0]);
    let warm = AttendConfig { schedule: Schedule::AfterWarmup, ..constant.clone() };
    assert_eq!(attend::sample_weights(&hard, &warm, 4, 10), vec![1.0, 1.0, 1.0]);
    assert_eq!(attend::sample_weights(&hard, &warm, 5, 10), vec![4.0, 1.0, 4.0]);
    let ramp = AttendConfig { schedule: Schedule::Ramp, ..constant.clone() };
    assert_eq!(attend::sample_weights(&hard, &ramp, 0, 4), vec![1.0, 1.0, 1.0]);
    assert_eq!(attend::sample_weights(&hard, &ramp, 3, 4), vec![4.0, 1.0, 4.0]);
    assert!((ramp.weight_at(1, 4) - 2.0).abs() < 1e-6);
    assert!(AttendConfig { weight: 0.5, ..constant.clone() }.validate().is_err());
    assert!(AttendConfig { top_fraction: 1.5, ..constant.clone() }.validate().is_err());

    // The hard set: PIE samples, or the top fraction by the PIE ranking.
    let dense: [&[u16]; 2] = [&[0, 0, 1, 1], &[0, 0, 1, 1]];
    // Sample 0: dense 0, pruned 1 (PIE); sample 2: dense 1, pruned tie 0/1 → 0 (PIE, half disagree).
    let pruned: [&[u16]; 2] = [&[1, 0, 1, 1], &[1, 0, 0, 1]];
    let losses: [&[f32]; 2] = [&[0.0; 4], &[0.0; 4]];
    let scores = pie::score_samples((&dense, &losses), (&pruned, &losses), &[0, 0, 1, 1], &[0; 4], 2);
    assert_eq!(attend::hard_set(&scores, &constant), vec![true, false, true, false]);
    let top = AttendConfig { top_fraction: 0.25, ..constant.clone() };
    assert_eq!(attend::hard_set(&scores, &top), vec![true, false, false, false]);
    let top = AttendConfig { top_fraction: 0.75, ..constant };
    assert_eq!(attend::hard_set(&scores, &top), vec![true, true, true, false]);
}

fn write_png(path: &std::path::Path, value: f32) {
    let image = ImageData { width: 6, height: 6, channels: 1, pixels: vec![value; 36] };
    image_io::save_png(&image, path).unwrap();
}

/// A folder data set `a/`, `b/` of five 6×6 images each.
fn image_folder(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    for (class, value) in [("a", 0.2), ("b", 0.8)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for k in 0..5 {
            write_png(&dir.join(class).join(format!("img{k}.png")), value);
        }
    }
    dir
}

#[test]
fn folder_data_joins_attributes_by_file_name() {
    let dir = image_folder("htl_folder");
    let csv = dir.join("attributes.csv");
    // Rows by full name, by file name and by stem; one sample left without a row.
    std::fs::write(
        &csv,
        "file,site,\"note, with comma\"\na/img0.png,north,x\nimg1.png,south,y\na/img2,north,z\nb/img0.png,south,w\n\
         a/img3.png,south,v\na/img4.png,north,u\nb/img1.png,north,t\nb/img2.png,south,s\nb/img3.png,north,r\n",
    )
    .unwrap();
    let source = HtlSource::Folder { path: dir.clone(), side: 6 };
    let data = data::load(&source, Some(&AttributeSpec { path: csv.clone(), column: None })).unwrap();
    assert_eq!(data.groups, vec!["(no row)", "north", "south"]);
    let group_of = |name: &str| -> &str {
        for split in Split::ALL {
            if let Some(i) = data.names_of(split).iter().position(|n| n == name) {
                return &data.groups[usize::from(data.groups_of(split)[i])];
            }
        }
        panic!("no sample {name}");
    };
    assert_eq!(group_of("a/img0.png"), "north");
    // `img1.png` names a/img1.png and b/img1.png alike; b/img1.png's own row wins there.
    assert_eq!(group_of("a/img1.png"), "south");
    assert_eq!(group_of("a/img2.png"), "north");
    assert_eq!(group_of("b/img1.png"), "north");
    assert_eq!(group_of("b/img4.png"), "(no row)");
    // Another column by name.
    let by_note =
        data::load(&source, Some(&AttributeSpec { path: csv.clone(), column: Some("note, with comma".into()) }))
            .unwrap();
    assert!(by_note.groups.contains(&"x".to_owned()));

    // Bad attribute files say which file and what is wrong.
    let message = |text: &str, column: Option<&str>| -> String {
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, text).unwrap();
        let spec = AttributeSpec { path: bad, column: column.map(str::to_owned) };
        let err = data::load(&source, Some(&spec)).unwrap_err();
        assert!(matches!(err, HtlError::Data { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("bad.csv"), "{text}");
        text
    };
    assert!(message("file,site\na/img0.png,north\n", Some("age")).contains("no column `age`"));
    assert!(message("file,site\na/img0.png,north,extra\n", None).contains("line 2 has 3 fields"));
    assert!(message("file,site\nzzz.png,north\n", None).contains("no row names a sample"));
    assert!(message("", None).contains("empty"));
    assert!(message("file\na/img0.png\n", None).contains("single column"));
}

#[test]
fn bad_folders_and_images_are_reported_with_their_path() {
    let dir = temp_dir("htl_bad_folder");
    std::fs::create_dir_all(dir.join("only")).unwrap();
    write_png(&dir.join("only").join("x.png"), 0.5);
    let err = data::load(&HtlSource::Folder { path: dir.clone(), side: 6 }, None).unwrap_err().to_string();
    assert!(err.contains("at least two sub-folders"), "{err}");

    let dir = image_folder("htl_corrupt");
    std::fs::write(dir.join("b").join("broken.png"), b"not a png at all").unwrap();
    let err = data::load(&HtlSource::Folder { path: dir, side: 6 }, None).unwrap_err().to_string();
    assert!(err.contains("broken.png"), "{err}");

    let err = data::load(&HtlSource::FashionMnist(temp_dir("htl_no_idx")), None).unwrap_err().to_string();
    assert!(err.contains("missing train-images-idx3-ubyte"), "{err}");
}

#[test]
fn scores_csv_round_trips_the_hard_flags() {
    let data = data::builtin_digits().with_train_limit(200);
    let config =
        PopulationConfig { models: 3, hidden: 16, epochs: 2, finetune_epochs: 1, sparsity: 0.9, ..Default::default() };
    let pops = population::train_populations(&data, &config, &RunControl::new(), &|_| {}).unwrap().unwrap();
    let train = pie::score_split(&pops, &data, Split::Train);
    let test = pie::score_split(&pops, &data, Split::Test);
    let text = files::scores_csv(&data, &[(Split::Train, &train), (Split::Test, &test)], RankBy::Pie);
    assert_eq!(text.lines().count(), 1 + 200 + data.data.test.len());
    assert!(text.starts_with(files::SCORES_HEADER));
    let dir = temp_dir("htl_scores");
    let path = dir.join("scores.csv");
    std::fs::write(&path, &text).unwrap();
    let (hard_train, hard_test) = files::read_hard_flags(&path, &data).unwrap();
    assert_eq!(hard_train, train.iter().map(|s| s.pie).collect::<Vec<_>>());
    assert_eq!(hard_test, test.iter().map(|s| s.pie).collect::<Vec<_>>());
    // Ranks are a permutation within each split.
    let mut ranks: Vec<usize> =
        text.lines().skip(1).take(200).map(|l| l.split(',').nth(15).unwrap().parse().unwrap()).collect();
    ranks.sort_unstable();
    assert_eq!(ranks, (1..=200).collect::<Vec<_>>());
    // Scores of another data set are refused.
    let err = files::read_hard_flags(&path, &data::builtin_digits()).unwrap_err().to_string();
    assert!(err.contains("another data set"), "{err}");
    assert_eq!(files::votes_text(&[0, 3, 0, 2]), "1:3 3:2");

    // The contact sheet holds the requested samples, PIEs framed red.
    let order = pie::rank(&train, RankBy::Pie);
    let sheet = files::contact_sheet(&data, Split::Train, &train, &order, RankBy::Pie, 10);
    assert_eq!((sheet.width, sheet.height, sheet.channels), (8 * 112, 2 * (112 + 36), 3));
    let first_is_pie = train[order[0]].pie;
    let corner = &sheet.pixels[(4 * sheet.width as usize + 4) * 3..(4 * sheet.width as usize + 4) * 3 + 3];
    assert_eq!(corner[0] > 0.8 && corner[1] < 0.2, first_is_pie, "frame colour {corner:?}");
}

#[test]
fn csv_fields_handle_quotes() {
    assert_eq!(data::csv_fields("a, \"b,c\" ,\"d\"\"e\""), vec!["a", "b,c", "d\"e"]);
    assert_eq!(data::csv_field("x,y"), "\"x,y\"");
    assert_eq!(data::csv_fields(&data::csv_field("say \"hi\", ok")), vec!["say \"hi\", ok"]);
}
