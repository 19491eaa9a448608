//! Image operations. Each one is a file in `catalogue/` that declares everything about it
//! (see [`Operation`]); the other modules here are the pixel code several of them share.
//! Parsing whole pipelines and printing them live in `pipeline`.

pub(crate) mod alpha;
pub(crate) mod blur;
mod catalogue;
pub(crate) mod color;
pub(crate) mod geometry;
mod gravity;
pub(crate) mod operation;
pub(crate) mod resize;

pub use catalogue::*;
pub use geometry::orientation_steps;
pub use gravity::Gravity;
pub use operation::OpSpec;
pub use resize::Filter;

/// Largest width or height a resize step may ask for.
pub const MAX_SIDE: u32 = 16384;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_sizes() {
        let fit = Op::Fit(Fit {
            width: 1280,
            height: 1280,
            filter: Filter::Lanczos3,
        });
        assert_eq!(fit.output_size(4000, 3000), Ok((1280, 960)));
        assert_eq!(
            fit.output_size(800, 600),
            Ok((800, 600)),
            "fit never enlarges"
        );
        assert_eq!(
            Op::Longest(Longest {
                size: 512,
                filter: Filter::Lanczos3
            })
            .output_size(100, 50),
            Ok((512, 256))
        );
        assert_eq!(
            Op::Scale(Scale {
                factor: 0.5,
                filter: Filter::Nearest
            })
            .output_size(3, 1),
            Ok((2, 1))
        );
        assert_eq!(
            Op::Rotate(Rotate { degrees: 90 }).output_size(3, 1),
            Ok((1, 3))
        );
        assert!(
            Op::Crop(Crop {
                x: 5,
                y: 0,
                width: 6,
                height: 1
            })
            .output_size(10, 10)
            .is_err()
        );
    }

    #[test]
    fn validation_refuses_out_of_range() {
        assert!(
            Op::Brightness(Brightness { value: 101 })
                .validate()
                .is_err()
        );
        assert!(Op::Rotate(Rotate { degrees: 45 }).validate().is_err());
        assert!(
            Op::Fit(Fit {
                width: 0,
                height: 10,
                filter: Filter::Nearest
            })
            .validate()
            .is_err()
        );
        assert!(Op::Blur(Blur { sigma: 0.0 }).validate().is_err());
        assert!(Op::Gamma(Gamma { value: f64::NAN }).validate().is_err());
        assert!(Op::Pixelate(Pixelate { size: 8 }).validate().is_ok());
    }
}
