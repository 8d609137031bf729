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
    assert!(message("file,site\n", None).contains("header but no rows"));
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
    assert!(train.iter().any(|s| s.pie), "the round trip should carry some PIE");
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
    // A missing test row or a repeated row is refused.
    let without_last: String = text.lines().take(text.lines().count() - 1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, &without_last).unwrap();
    let err = files::read_hard_flags(&path, &data).unwrap_err().to_string();
    assert!(err.contains("test samples"), "{err}");
    let repeated = format!("{text}{}\n", text.lines().nth(1).unwrap());
    std::fs::write(&path, &repeated).unwrap();
    let err = files::read_hard_flags(&path, &data).unwrap_err().to_string();
    assert!(err.contains("appears twice"), "{err}");
    std::fs::write(&path, &text).unwrap();
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

mod localize {
    use sparsefield::compute::control::RunControl;
    use sparsefield::compute::htl::attend::AttendConfig;
    use sparsefield::compute::htl::lesion::{self, SyntheticConfig, bounding_box};
    use sparsefield::compute::htl::seg::{self, FEATURES, SCALES, SegConfig};
    use sparsefield::compute::image_io::{self, ImageData};

    use super::super::common::temp_dir;

    #[test]
    fn synthetic_lesions_have_masks_boxes_and_an_imbalanced_group() {
        let config = SyntheticConfig { train: 200, test: 50, side: 24, dark_fraction: 0.2, seed: 3 };
        let data = lesion::synthetic(&config).unwrap();
        assert_eq!((data.train.len(), data.test.len(), data.train.side), (200, 50, 24));
        assert_eq!(data.train.images.len(), 200 * 3 * 576);
        let dark = data.train.groups.iter().filter(|&&g| g == 1).count() as f64 / 200.0;
        assert!((0.1..0.3).contains(&dark), "dark fraction {dark}");
        for i in 0..data.train.len() {
            let mask = data.train.mask(i);
            assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0));
            let area = mask.iter().filter(|&&m| m > 0.5).count();
            assert!((4..576 / 2).contains(&area), "sample {i}: lesion area {area}");
            // The box holds every lesion pixel and touches the lesion on each side.
            let (x0, y0, x1, y1) = bounding_box(mask, 24).unwrap();
            for (p, &m) in mask.iter().enumerate() {
                if m > 0.5 {
                    assert!((x0..=x1).contains(&(p % 24)) && (y0..=y1).contains(&(p / 24)));
                }
            }
            let column = |x: usize| (y0..=y1).any(|y| mask[y * 24 + x] > 0.5);
            let row = |y: usize| (x0..=x1).any(|x| mask[y * 24 + x] > 0.5);
            assert!(column(x0) && column(x1) && row(y0) && row(y1), "sample {i}: the box is not tight");
            // The lesion is darker than the skin around it.
            let image = data.train.image(i);
            let mean = |inside: bool| {
                let values: Vec<f32> =
                    (0..576).filter(|&p| (mask[p] > 0.5) == inside).map(|p| image.pixels[p * 3]).collect();
                values.iter().sum::<f32>() / values.len() as f32
            };
            assert!(mean(true) < mean(false), "sample {i}");
        }
        assert_eq!(bounding_box(&[0.0; 16], 4), None);
        // Seeded: the same set again.
        assert_eq!(lesion::synthetic(&config).unwrap(), data);
        assert!(lesion::synthetic(&SyntheticConfig { side: 8, ..config }).is_err());
    }

    #[test]
    fn iou_dice_and_majority_follow_their_formulas() {
        let a = [true, true, false, false];
        let b = [true, false, true, false];
        assert!((seg::iou(&a, &b) - 1.0 / 3.0).abs() < 1e-12);
        assert!((seg::dice(&a, &b) - 0.5).abs() < 1e-12);
        assert_eq!(seg::iou(&[false; 3], &[false; 3]), 1.0);
        assert_eq!(seg::dice(&[true, false], &[false, true]), 0.0);
        let c = [true, true, true, false];
        assert_eq!(seg::majority(&[&a, &b, &c]), vec![true, true, true, false]);
        assert_eq!(seg::majority(&[&a, &b]), vec![true, false, false, false], "a tie is not a majority");
    }

    #[test]
    fn pixel_features_are_box_means_of_the_pyramid() {
        let data = lesion::synthetic(&SyntheticConfig { train: 4, test: 1, side: 16, ..Default::default() }).unwrap();
        let features = seg::pixel_features(&data.train);
        assert_eq!(features.len(), 4 * 256 * FEATURES);
        // Brute force for image 2, pixel (5, 9): mean over the clamped s × s box at each offset.
        let (i, x, y) = (2_usize, 5_i64, 9_i64);
        let image = data.train.image(i);
        let row = &features[(i * 256 + (y as usize) * 16 + x as usize) * FEATURES..][..FEATURES];
        let mut k = 0;
        for &s in &SCALES {
            let s = s as i64;
            for dy in [-s, 0, s] {
                for dx in [-s, 0, s] {
                    // The s × s box starting s/2 before the grid point, cut to the image (every
                    // box here overlaps the image).
                    let (left, top) = (x + dx - s / 2, y + dy - s / 2);
                    let inside = |xx: i64, yy: i64| (left..left + s).contains(&xx) && (top..top + s).contains(&yy);
                    for c in 0..3 {
                        let (mut sum, mut count) = (0.0, 0);
                        for yy in 0..16 {
                            for xx in 0..16 {
                                if inside(xx, yy) {
                                    sum += image.at(xx as u32, yy as u32, c);
                                    count += 1;
                                }
                            }
                        }
                        assert!(count > 0);
                        let want = sum / count as f32;
                        assert!((row[k] - want).abs() < 1e-5, "feature {k}: {} vs {want}", row[k]);
                        k += 1;
                    }
                }
            }
        }
        assert_eq!(k, FEATURES);
    }

    #[test]
    fn a_seeded_localization_run_finds_dark_skin_over_represented_and_attends() {
        let data =
            lesion::synthetic(&SyntheticConfig { train: 300, test: 100, side: 32, ..Default::default() }).unwrap();
        let config = SegConfig { models: 3, epochs: 6, finetune_epochs: 2, ..SegConfig::default() };
        let attend = AttendConfig { weight: 4.0, ..AttendConfig::default() };
        let report = seg::localize(&data, &config, Some(&attend), &RunControl::new(), &|_, _| {}).unwrap().unwrap();
        assert!(report.dense.iou > 0.6, "dense IoU {}", report.dense.iou);
        assert!(
            report.pruned_layer_sparsity.iter().all(|&s| (s - 0.5).abs() < 0.01),
            "{:?}",
            report.pruned_layer_sparsity
        );
        let hard: Vec<_> = report.train_scores.iter().filter(|s| s.hard).collect();
        assert!(!hard.is_empty());
        assert_eq!(hard.len(), report.hard_train);
        assert!(hard.iter().all(|s| s.agreement < config.agreement_threshold));
        let dark_share = data.train.groups.iter().filter(|&&g| g == 1).count() as f64 / data.train.len() as f64;
        let dark_hard = hard.iter().filter(|s| s.group == 1).count() as f64 / hard.len() as f64;
        assert!(dark_hard > 2.0 * dark_share, "dark skin: {dark_share:.2} of the samples, {dark_hard:.2} of the hard");
        let attended = report.attended.as_ref().unwrap();
        assert_ne!(attended.iou, report.dense.iou, "attending changed the models");
        assert_eq!(attended.per_group_iou.len(), 2);

        // Semi-supervised: a quarter of the masks, the rest pseudo-labelled.
        let semi = SegConfig { labelled_fraction: 0.25, ..config };
        let report = seg::localize(&data, &semi, None, &RunControl::new(), &|_, _| {}).unwrap().unwrap();
        assert_eq!(report.labelled, 75);
        assert!(report.attended.is_none());
        assert!(report.dense.iou > 0.3, "semi-supervised IoU {}", report.dense.iou);
    }

    fn rgb(value: f32, side: u32) -> ImageData {
        ImageData { width: side, height: side, channels: 3, pixels: vec![value; (side * side * 3) as usize] }
    }

    #[test]
    fn lesion_folders_pair_images_with_masks_and_report_bad_pairs() {
        let dir = temp_dir("htl_lesion_folder");
        std::fs::create_dir_all(dir.join("images")).unwrap();
        std::fs::create_dir_all(dir.join("masks")).unwrap();
        for k in 0..6 {
            image_io::save_png(&rgb(0.7, 20), &dir.join("images").join(format!("p{k}.png"))).unwrap();
            let mut mask = ImageData { width: 20, height: 20, channels: 1, pixels: vec![0.0; 400] };
            mask.pixels[..40].iter_mut().for_each(|v| *v = 1.0);
            let name = if k % 2 == 0 { format!("p{k}.png") } else { format!("p{k}_mask.png") };
            image_io::save_png(&mask, &dir.join("masks").join(name)).unwrap();
        }
        let data = lesion::load_folder(&dir, 16, None).unwrap();
        assert_eq!(data.train.len() + data.test.len(), 6);
        assert_eq!(data.train.side, 16);
        assert!(data.train.masks.contains(&1.0) && data.train.masks.contains(&0.0));

        // A mask of another size, a missing mask, a corrupt image, no masks folder.
        let mut small = ImageData { width: 10, height: 10, channels: 1, pixels: vec![0.0; 100] };
        small.pixels[0] = 1.0;
        image_io::save_png(&small, &dir.join("masks").join("p0.png")).unwrap();
        let err = lesion::load_folder(&dir, 16, None).unwrap_err().to_string();
        assert!(err.contains("p0.png") && err.contains("masks must match"), "{err}");
        std::fs::remove_file(dir.join("masks").join("p0.png")).unwrap();
        let err = lesion::load_folder(&dir, 16, None).unwrap_err().to_string();
        assert!(err.contains("p0.png") && err.contains("has no mask"), "{err}");
        std::fs::write(dir.join("images").join("p0.png"), b"garbage").unwrap();
        std::fs::write(dir.join("masks").join("p0.png"), b"garbage").unwrap();
        let err = lesion::load_folder(&dir, 16, None).unwrap_err().to_string();
        assert!(err.contains("p0.png"), "{err}");
        std::fs::remove_dir_all(dir.join("masks")).unwrap();
        let err = lesion::load_folder(&dir, 16, None).unwrap_err().to_string();
        assert!(err.contains("images/") && err.contains("masks/"), "{err}");
    }
}

#[test]
fn the_staged_study_reports_its_stages_and_keeps_the_populations_when_only_attention_changes() {
    use sparsefield::compute::control::RunEvent;
    use sparsefield::compute::htl::HtlConfig;
    use sparsefield::compute::htl::study::{self, HtlResults};
    let config = HtlConfig {
        train_limit: 300,
        population: PopulationConfig {
            models: 3,
            hidden: 16,
            epochs: 2,
            finetune_epochs: 1,
            sparsity: 0.9,
            ..Default::default()
        },
        attend: AttendConfig { top_fraction: 0.2, ..AttendConfig::default() },
        ..HtlConfig::default()
    };
    let (mut total, mut snapshots, mut last_epoch) = (0, 0, 0);
    let done = study::study(
        HtlResults { config: config.clone(), ..HtlResults::default() },
        &RunControl::new(),
        &mut |event| match event {
            RunEvent::Started { total_steps } => total = total_steps,
            RunEvent::Snapshot(_) => snapshots += 1,
            RunEvent::Progress { step, .. } => last_epoch = step,
        },
    )
    .unwrap()
    .expect("not cancelled");
    assert!(total > 0 && last_epoch == total, "{last_epoch} of {total} epochs");
    assert_eq!(snapshots, 1 + 3 + 1, "data, each of the 3 model pairs, the scores");
    assert_eq!(done.models_done, 3);
    assert!(done.train_scores.is_some() && (done.comparison.is_some() || done.comparison_note.is_some()));
    // Another attention setting keeps the data and both populations; another sparsity keeps only the data.
    let attend = AttendConfig { top_fraction: 0.3, ..config.attend.clone() };
    let kept = study::reusable(&done, &HtlConfig { attend, ..config.clone() });
    assert!(kept.data.is_some() && kept.populations.is_some() && kept.comparison.is_none());
    let population = PopulationConfig { sparsity: 0.5, ..config.population.clone() };
    let kept = study::reusable(&done, &HtlConfig { population, ..config.clone() });
    assert!(kept.data.is_some() && kept.populations.is_none() && kept.models_done == 0);
    let control = RunControl::new();
    control.cancel();
    assert!(study::study(HtlResults { config, ..HtlResults::default() }, &control, &mut |_| {}).unwrap().is_none());
}
