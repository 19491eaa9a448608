//! What every operation declares about itself (the [`Operation`] trait), and the pieces of
//! argument text their parsers share. The operations themselves are in `catalogue/`.

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::{Filter, Gravity};

/// How an operation is written and explained: read by the parser, `prism ops`, the bot's
/// `/ops` and caption parser, and checked against the README's table.
#[derive(Debug)]
pub struct OpSpec {
    /// The step name, then its aliases (`gray`, `grey`, `grayscale`).
    pub names: &'static [&'static str],
    /// The syntax line, e.g. `blur:SIGMA`.
    pub syntax: &'static str,
    /// What it does, with the ranges of its arguments.
    pub about: &'static str,
    /// A valid step, shown when the argument is missing.
    pub example: &'static str,
}

impl OpSpec {
    /// The canonical step name.
    pub fn name(&self) -> &'static str {
        self.names[0]
    }
}

/// One image operation: everything about it in one place, beside its `SPEC` (an
/// [`OpSpec`] constant of the type, which the registry reads). Add one by copying a file in
/// `ops/catalogue/` and listing it in `catalogue/mod.rs`. `Op` calls the value methods
/// through `dyn Operation`; `parse` and `test_cases` build values, so the registry calls
/// them on the type.
pub(crate) trait Operation {
    /// Reads the text after `name:` (`None` when there is no colon), arguments in range
    /// or the reason why not.
    fn parse(args: Option<&str>) -> Result<Self, String>
    where
        Self: Sized;

    /// The canonical text: shortest numbers, defaults left out.
    fn canonical(&self) -> String;

    /// Checks every argument against its documented range (for values built in code or
    /// deserialised rather than parsed).
    fn validate(&self) -> Result<(), String>;

    /// The size this step turns `size` into, without touching pixels, so a pipeline's
    /// limits can be checked before decoding.
    fn output_size(&self, size: (u32, u32)) -> Result<(u32, u32), String> {
        Ok(size)
    }

    /// Runs the step on the CPU, producing the size [`Operation::output_size`] planned.
    fn apply(&self, frame: Frame, output: (u32, u32)) -> Result<Frame, Error>;

    /// CPU nanoseconds per pixel touched on one core, for `auto`'s choice of backend
    /// (measured with `gpu_bench`; README "GPU backend").
    fn cpu_ns_per_pixel(&self) -> f64;

    /// Bytes held while the step runs, from its input and output sizes: by default the two
    /// frames.
    fn working_bytes(&self, input: (u32, u32), output: (u32, u32), bytes_per_pixel: u64) -> u64 {
        (pixels(input) + pixels(output)) * bytes_per_pixel
    }

    /// Whether the step resamples the whole image (a first resample lets JPEG decode at a
    /// reduced scale).
    fn resamples(&self) -> bool {
        false
    }

    /// Whether the step places its geometry by looking at the pixels (a smart `fill`),
    /// which the GPU's pass plan, made before any pixel is there, cannot do.
    fn places_by_content(&self) -> bool {
        false
    }

    /// Appends the step's compute passes (shaders in `shaders/`).
    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, output: (u32, u32));

    /// Steps the conformance and GPU tests run on a `width`×`height` image: every argument
    /// shape and every branch of the implementation.
    fn test_cases(size: (u32, u32)) -> Vec<Self>
    where
        Self: Sized;
}

/// Width × height as a count.
pub(crate) fn pixels((width, height): (u32, u32)) -> u64 {
    u64::from(width) * u64::from(height)
}

/// The argument, or an error that shows an example.
pub(crate) fn required<'a>(args: Option<&'a str>, spec: &OpSpec) -> Result<&'a str, String> {
    args.ok_or_else(|| format!("`{}` needs an argument, e.g. {}", spec.name(), spec.example))
}

/// For operations without arguments.
pub(crate) fn no_arguments(args: Option<&str>, spec: &OpSpec) -> Result<(), String> {
    match args {
        None => Ok(()),
        Some(_) => Err(format!("`{}` takes no arguments", spec.name())),
    }
}

pub(crate) fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a valid number here"))
}

/// `value` within `low..=high`, or the reason naming the argument.
pub(crate) fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    (low, high): (T, T),
) -> Result<(), String> {
    if value >= low && value <= high {
        Ok(())
    } else {
        Err(format!("{name} {value} is out of range {low}..={high}"))
    }
}

/// `WxH`, or a single number for a square box.
pub(crate) fn parse_box(text: &str) -> Result<(u32, u32), String> {
    match text.split_once('x') {
        Some((w, h)) => Ok((number(w)?, number(h)?)),
        None => {
            let side = number(text)?;
            Ok((side, side))
        }
    }
}

/// `WxH[:FILTER]` (`N[:FILTER]` for a square) for the resampling steps that do not crop.
pub(crate) fn box_and_filter(
    args: Option<&str>,
    spec: &OpSpec,
) -> Result<(u32, u32, Filter), String> {
    let (size, filter) = split_filter(required(args, spec)?, spec)?;
    let (width, height) = parse_box(size)?;
    Ok((width, height, filter))
}

/// `VALUE[:FILTER]` for the resampling steps that do not crop.
pub(crate) fn split_filter<'a>(args: &'a str, spec: &OpSpec) -> Result<(&'a str, Filter), String> {
    match split_options(args)? {
        (value, filter, None) => Ok((value, filter)),
        (_, _, Some(gravity)) => Err(format!(
            "{} does not crop, so it takes no gravity (`{}`); only fill does",
            spec.name(),
            gravity.name()
        )),
    }
}

/// `VALUE[:FILTER][:GRAVITY]`, the two names in either order.
pub(crate) fn split_options(args: &str) -> Result<(&str, Filter, Option<Gravity>), String> {
    let mut parts = args.split(':');
    let value = parts.next().unwrap_or_default();
    let (mut filter, mut gravity) = (None, None);
    for name in parts {
        let repeated = if let Some(f) = Filter::from_name(name) {
            filter.replace(f).is_some()
        } else if let Some(g) = Gravity::from_name(name) {
            gravity.replace(g).is_some()
        } else {
            let filters: Vec<&str> = Filter::ALL.iter().map(|f| f.name()).collect();
            let gravities: Vec<&str> = Gravity::ALL.iter().map(|g| g.name()).collect();
            return Err(format!(
                "unknown filter `{name}` (one of {}; fill also takes a gravity: {})",
                filters.join(", "),
                gravities.join(", ")
            ));
        };
        if repeated {
            return Err(format!("`{name}`: a second filter or gravity"));
        }
    }
    Ok((value, filter.unwrap_or_default(), gravity))
}

/// `:FILTER` when it is not the default, for canonical text.
pub(crate) fn filter_suffix(filter: Filter) -> String {
    if filter == Filter::default() {
        String::new()
    } else {
        format!(":{}", filter.name())
    }
}
