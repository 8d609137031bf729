//! Shared UI: commands, the lab list, the theme, widgets and the live-analysis driver. Each lab's
//! panel lives in `labs/<lab>/panel.rs`; panels read state and return [`Command`]s that `app` applies.

pub mod live;
pub mod orbit_viewer;
pub mod theme;
pub mod widgets;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::jobs::JobId;

/// The labs that exist, in the order the sidebar lists them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabId {
    #[default]
    Inr,
    Edit,
    Nerf,
    Prune,
    Ntk,
    Htl,
    Lift,
}

impl LabId {
    pub const ALL: [Self; 7] = [Self::Inr, Self::Edit, Self::Nerf, Self::Lift, Self::Prune, Self::Ntk, Self::Htl];

    pub fn title(self) -> &'static str {
        match self {
            Self::Inr => "INR — fit an image",
            Self::Edit => "INR edit — process INRs",
            Self::Nerf => "NeRF — radiance fields",
            Self::Prune => "Pruning — random masks at init",
            Self::Ntk => "NTK — spectra and sparse activation",
            Self::Htl => "Hard samples — what pruning forgets",
            Self::Lift => "NeuralLift-360 — one photo to 360°",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Inr => "Fit a SIREN (sine-activated MLP) to an image and explore it as a continuous function.",
            Self::Edit => {
                "Blur, denoise, deblur or inpaint an INR without decoding it: an operator reads its derivatives."
            }
            Self::Nerf => "Train a hash-grid radiance field on multi-view images and orbit it while it learns.",
            Self::Prune => {
                "Prune a two-layer net at random before training and watch generalization rise, peak and collapse."
            }
            Self::Ntk => {
                "Neural tangent kernels of wide ReLU nets with trainable bias: spectra, sparsity and training speed."
            }
            Self::Htl => {
                "Find the samples pruned networks forget (PIE), see which classes and groups they come from, and attend to them."
            }
            Self::Lift => {
                "Lift one photo to a radiance field that looks right from every side, and orbit it while it forms."
            }
        }
    }
}

/// Which file a file dialog is picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRequest {
    OpenImage,
    OpenInr,
    SaveInr,
    ExportPng,
    /// A NeRF data set folder.
    OpenNerfData,
    /// A NeRF checkpoint folder.
    OpenNerfCheckpoint,
    SaveNerfCheckpoint,
    ExportNerfView,
    ExportNerfTurntable,
    AddEditTrainingImage,
    /// The input image of a custom training pair (its target is asked for next).
    AddEditPairInput,
    AddEditPairTarget,
    OpenOperator,
    SaveOperator,
    /// An INR for the edit lab to edit.
    OpenEditSubject,
    ExportEdit,
    ExportPruneRun,
    ExportPruneSweep,
    /// A Fashion-MNIST or class-per-folder data set for the pruning lab.
    OpenPruneData,
    ExportPruneInit,
    /// A CSV file of points for the NTK lab.
    OpenNtkPoints,
    /// A folder for every NTK table and chart.
    ExportNtk,
    /// A Fashion-MNIST or class-per-folder data set for the hard-sample lab.
    OpenHtlData,
    /// A CSV of per-sample attributes.
    OpenHtlAttributes,
    /// A folder for the hard-sample lab's files.
    ExportHtl,
    /// A folder of lesion images and masks.
    OpenHtlLesions,
    /// The photo to lift.
    OpenLiftImage,
    /// A rough depth file (16-bit PNG or .npy) for the lift.
    OpenLiftDepth,
    /// A mask image for the lift.
    OpenLiftMask,
    /// A folder for the lift's files.
    ExportLift,
}

pub use crate::compute::image_io::BuiltinImage;

/// What the user asked for this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    SelectLab(LabId),
    ToggleTheme,
    PauseJob(JobId, bool),
    CancelJob(JobId),
    DismissNotification(u64),
    ClearNotifications,
    /// Open a native file dialog; the answer arrives later as the matching command.
    PickFile(FileRequest),
    LoadImage(PathBuf),
    UseBuiltinImage(BuiltinImage),
    LoadInr(PathBuf),
    SaveInr(PathBuf),
    ExportPng(PathBuf),
    /// Start fitting from scratch.
    Train,
    /// Continue fitting the current INR with the current settings.
    ContinueTraining,
    /// Forget the loaded INR's weights and training history.
    ClearInr,
    ResetInrSettings,
    /// Load the built-in NeRF demo scene.
    NerfUseDemo,
    /// Load a NeRF data set folder.
    NerfLoadData(PathBuf),
    NerfTrain,
    NerfContinue,
    NerfResetSettings,
    NerfSaveCheckpoint(PathBuf),
    NerfLoadCheckpoint(PathBuf),
    NerfExportView(PathBuf),
    NerfExportTurntable(PathBuf),
    /// Sweep the pruning fraction with the pruning lab's settings.
    PruneSweep,
    PruneResetSettings,
    PruneExportRun(PathBuf),
    PruneExportSweep(PathBuf),
    /// Use this data set for pruning at initialization (loaded in the background).
    PruneSetData(crate::compute::prune::data::DataSource),
    /// Compare the pruning-at-init methods with the lab's settings.
    PruneCompare,
    PruneExportInit(PathBuf),
    /// Train an operator for the edit lab's settings.
    EditTrain,
    EditResetSettings,
    EditAddTrainingImage(PathBuf),
    /// The input of a custom pair was picked: ask for its target.
    EditPickPairTarget(PathBuf),
    /// Add a custom training pair (input, target).
    EditAddPair(PathBuf, PathBuf),
    EditLoadOperator(PathBuf),
    EditSaveOperator(PathBuf),
    /// Edit this INR file.
    EditLoadSubject(PathBuf),
    /// Edit the INR lab's current INR.
    EditUseLabInr,
    EditExport(PathBuf),
    /// Run INSP-ConvNet against the pixel CNN on the built-in digits.
    EditClassify,
    NtkResetSettings,
    /// Finish the cancelled NTK analysis.
    NtkResume,
    /// Use the points of this CSV file in the NTK lab.
    NtkLoadCsv(PathBuf),
    /// Write every NTK table and chart into this folder.
    NtkExport(PathBuf),
    /// Use these samples in the hard-sample lab.
    HtlSetSource(crate::compute::htl::data::HtlSource),
    /// Join this attribute CSV to the hard-sample lab's samples.
    HtlLoadAttributes(PathBuf),
    HtlClearAttributes,
    HtlResetSettings,
    /// Run the cancelled or failed hard-sample analysis again.
    HtlResume,
    /// Write the hard-sample lab's files into this folder.
    HtlExport(PathBuf),
    /// Run the lesion localization study with the lab's settings.
    HtlLocalize,
    /// Localize lesions of this folder (images/ and masks/).
    HtlSetLesionFolder(PathBuf),
    HtlUseSyntheticLesions,
    /// Lift this photo.
    LiftLoadImage(PathBuf),
    LiftUseExample,
    /// Use this depth file as the rough depth.
    LiftLoadDepth(PathBuf),
    LiftLoadMask(PathBuf),
    LiftClearMask,
    LiftStart,
    LiftResetSettings,
    /// Write the lift's files into this folder.
    LiftExport(PathBuf),
}
