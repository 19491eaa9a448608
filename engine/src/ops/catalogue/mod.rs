//! Every operation, one file each, and the one list that everything reads: the pipeline
//! parser and canonical text, `prism ops` and the README check, the bot's caption parser
//! and `/ops`, the store's operation names, the cost model, the memory estimate, the GPU
//! planner and the conformance tests.
//!
//! To add an operation: copy the file of a similar one, give the type its `SPEC` and
//! implement [`Operation`] (the compiler asks for every part, its GPU plan and test cases
//! included), add it to the list at the bottom, and put a new shader, if it needs one, in
//! `shaders/`.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::operation::{OpSpec, Operation};

/// An operation as the registry lists it: how to write it and how to build it.
pub struct Entry {
    pub spec: &'static OpSpec,
    /// Reads the text after `name:`; the result is not validated yet.
    pub parse: fn(Option<&str>) -> Result<Op, String>,
    /// Steps the conformance and GPU tests run on an image of this size.
    pub test_cases: fn((u32, u32)) -> Vec<Op>,
}

impl Op {
    /// The canonical text: shortest numbers, defaults left out.
    pub fn canonical(&self) -> String {
        self.behaviour().canonical()
    }

    /// Checks every argument against its documented range.
    pub fn validate(&self) -> Result<(), String> {
        self.behaviour().validate()
    }

    /// The size this step turns a `width`×`height` image into, without touching pixels,
    /// so a pipeline's limits can be checked before decoding.
    pub fn output_size(&self, width: u32, height: u32) -> Result<(u32, u32), String> {
        self.behaviour().output_size((width, height))
    }

    /// Runs the step on the CPU, producing the size [`Op::output_size`] planned.
    pub fn apply(&self, frame: Frame, output: (u32, u32)) -> Result<Frame, Error> {
        self.behaviour().apply(frame, output)
    }

    /// Whether the step resamples the whole image.
    pub fn is_resample(&self) -> bool {
        self.behaviour().resamples()
    }

    /// Whether the op places its geometry by looking at the pixels (a smart `fill`), which
    /// the GPU's pass plan, made before any pixel is there, cannot do.
    pub fn places_by_content(&self) -> bool {
        self.behaviour().places_by_content()
    }

    /// CPU nanoseconds per pixel touched on one core.
    pub(crate) fn cpu_ns_per_pixel(&self) -> f64 {
        self.behaviour().cpu_ns_per_pixel()
    }

    /// Bytes held while the step runs.
    pub(crate) fn working_bytes(
        &self,
        input: (u32, u32),
        output: (u32, u32),
        bytes_per_pixel: u64,
    ) -> u64 {
        self.behaviour()
            .working_bytes(input, output, bytes_per_pixel)
    }

    /// Appends the step's compute passes.
    #[cfg(feature = "gpu")]
    pub(crate) fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, output: (u32, u32)) {
        self.behaviour().plan_gpu(planner, output);
    }
}

/// The registry's entry for a step name or alias.
pub fn lookup(name: &str) -> Option<&'static Entry> {
    REGISTRY
        .iter()
        .find(|entry| entry.spec.names.contains(&name))
}

/// Declares the operations: their modules, the [`Op`] enum with a variant each, and
/// [`REGISTRY`] in this order (the order of `prism ops`).
macro_rules! operations {
    ($($module:ident :: $name:ident),* $(,)?) => {
        $(mod $module;)*
        $(pub use $module::$name;)*

        /// One step of a pipeline. Build them by parsing pipeline text, or directly and then
        /// [`Op::validate`] them (deserialising a [`crate::Pipeline`] validates).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "op", rename_all = "snake_case")]
        pub enum Op {
            $($name($name),)*
        }

        $(impl From<$name> for Op {
            fn from(op: $name) -> Op {
                Op::$name(op)
            }
        })*

        impl Op {
            fn behaviour(&self) -> &dyn Operation {
                match self {
                    $(Op::$name(op) => op,)*
                }
            }

            /// How the step is written.
            pub fn spec(&self) -> &'static OpSpec {
                match self {
                    $(Op::$name(_) => &$name::SPEC,)*
                }
            }
        }

        /// Every operation, in `prism ops` order.
        pub const REGISTRY: &[Entry] = &[$(Entry {
            spec: &$name::SPEC,
            parse: |args| <$name as Operation>::parse(args).map(Op::$name),
            test_cases: |size| {
                <$name as Operation>::test_cases(size)
                    .into_iter()
                    .map(Op::$name)
                    .collect()
            },
        },)*];
    };
}

operations! {
    fit::Fit,
    fill::Fill,
    resize::Resize,
    scale::Scale,
    longest::Longest,
    crop::Crop,
    rotate::Rotate,
    flip::Flip,
    gray::Gray,
    brightness::Brightness,
    contrast::Contrast,
    saturation::Saturation,
    gamma::Gamma,
    sepia::Sepia,
    invert::Invert,
    blur::Blur,
    sharpen::Sharpen,
    pixelate::Pixelate,
}
pub use flip::FlipAxis;
