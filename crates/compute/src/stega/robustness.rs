//! How well a secret survives what may happen to a view: each attack at each of its sweep
//! strengths applied to marked and clean renders, with the recovery (PSNR of the secret image,
//! or the share of bits right) and the classifier's verdicts.

use serde::{Deserialize, Serialize};

use super::attacks::Attack;
use super::decoder::Decoder;
use super::embed::{EmbedError, recovery_quality};
use super::secret::Secret;
use crate::control::RunControl;
use crate::image_io::ImageData;

/// One attack at one strength, averaged over the views.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub attack: String,
    pub strength: f64,
    /// PSNR in dB (image secrets) or bit accuracy in [0, 1] (bits) from the marked views.
    pub recovery: f64,
    /// The classifier's mean score on the marked views.
    pub marked_score: f64,
    /// Marked views called marked and clean views called clean, over both.
    pub classifier_accuracy: f64,
}

/// `attack` on every view (`marked` and `clean` renders of the same cameras), scored.
pub fn score_attack(
    decoder: &Decoder,
    secret: &Secret,
    attack: Attack,
    marked: &[ImageData],
    clean: &[ImageData],
) -> Result<SweepRow, EmbedError> {
    let apply = |views: &[ImageData], salt: u64| -> Result<Vec<ImageData>, EmbedError> {
        views.iter().enumerate().map(|(i, v)| Ok(attack.apply(v, 17 * i as u64 + salt)?)).collect()
    };
    let from_marked = decoder.recover_all(&apply(marked, 0)?)?;
    let from_clean = decoder.recover_all(&apply(clean, 1)?)?;
    #[allow(clippy::cast_precision_loss)]
    let n = from_marked.len().max(1) as f64;
    let right = from_marked.iter().filter(|r| r.carries_secret()).count()
        + from_clean.iter().filter(|r| !r.carries_secret()).count();
    #[allow(clippy::cast_precision_loss)]
    Ok(SweepRow {
        attack: attack.kind_name().to_owned(),
        strength: attack.strength(),
        recovery: from_marked.iter().map(|r| recovery_quality(secret, &r.secret)).sum::<f64>() / n,
        marked_score: from_marked.iter().map(|r| f64::from(r.score)).sum::<f64>() / n,
        classifier_accuracy: right as f64 / (from_marked.len() + from_clean.len()).max(1) as f64,
    })
}

/// How many rows [`sweep`] gives.
pub fn sweep_len() -> usize {
    Attack::KINDS.iter().map(|k| k.sweep_strengths().len()).sum()
}

/// Every attack kind at each of its sweep strengths; `on_row` sees each row as it is done and
/// may stop the sweep by returning `false` (as may `control`).
pub fn sweep(
    decoder: &Decoder,
    secret: &Secret,
    marked: &[ImageData],
    clean: &[ImageData],
    control: &RunControl,
    mut on_row: impl FnMut(&SweepRow) -> bool,
) -> Result<Vec<SweepRow>, EmbedError> {
    let mut rows = Vec::new();
    for kind in Attack::KINDS {
        for &strength in kind.sweep_strengths() {
            if control.is_cancelled() {
                return Ok(rows);
            }
            let row = score_attack(decoder, secret, kind.with_strength(strength), marked, clean)?;
            let more = on_row(&row);
            rows.push(row);
            if !more {
                return Ok(rows);
            }
        }
    }
    Ok(rows)
}

/// The sweep's rows as CSV.
pub fn sweep_csv(rows: &[SweepRow]) -> String {
    let mut csv = String::from("attack,strength,recovery,marked_score,classifier_accuracy\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            r.attack, r.strength, r.recovery, r.marked_score, r.classifier_accuracy
        ));
    }
    csv
}

/// One panel per attack kind: recovery against strength.
pub fn sweep_chart(rows: &[SweepRow], recovery_label: &str) -> ImageData {
    use crate::chart::{PALETTE, Panel, Series, render};
    let panels: Vec<Panel> = Attack::KINDS
        .iter()
        .filter_map(|kind| {
            let points: Vec<(f64, f64)> =
                rows.iter().filter(|r| r.attack == kind.kind_name()).map(|r| (r.strength, r.recovery)).collect();
            (!points.is_empty()).then(|| Panel {
                title: format!("{} {recovery_label}", kind.kind_name()),
                x_label: kind.strength_name().to_owned(),
                series: vec![Series {
                    label: "marked views".into(),
                    colour: PALETTE[0],
                    points,
                    markers: true,
                    ..Series::default()
                }],
                ..Panel::default()
            })
        })
        .collect();
    render(&panels, 3, 1200, 700)
}
