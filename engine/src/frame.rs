//! Decoded pixels: 8-bit RGB or RGBA (straight alpha), rows packed without padding.

use crate::error::Error;

/// Channel layout of a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    Rgb8,
    Rgba8,
}

impl Layout {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            Layout::Rgb8 => 3,
            Layout::Rgba8 => 4,
        }
    }
}

/// An image in memory. Invariant: `data.len() == width * height * bytes_per_pixel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    layout: Layout,
    data: Vec<u8>,
}

impl Frame {
    /// Wraps pixel bytes, checking that their length matches the dimensions.
    pub fn new(width: u32, height: u32, layout: Layout, data: Vec<u8>) -> Result<Frame, Error> {
        if width == 0 || height == 0 {
            return Err(Error::Internal(format!("empty frame {width}x{height}")));
        }
        if Some(data.len()) != byte_len(width, height, layout) {
            return Err(Error::Internal(format!(
                "frame {width}x{height} {layout:?} given {} bytes",
                data.len()
            )));
        }
        Ok(Frame {
            width,
            height,
            layout,
            data,
        })
    }

    /// A frame of the given size with every byte zero.
    pub fn zeroed(width: u32, height: u32, layout: Layout) -> Result<Frame, Error> {
        let len = byte_len(width, height, layout)
            .ok_or_else(|| Error::Limits(format!("{width}x{height} does not fit in memory")))?;
        Frame::new(width, height, layout, vec![0; len])
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn layout(&self) -> Layout {
        self.layout
    }
    pub fn bytes_per_pixel(&self) -> usize {
        self.layout.bytes_per_pixel()
    }
    pub fn has_alpha(&self) -> bool {
        self.layout == Layout::Rgba8
    }
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
    /// Bytes in one row.
    pub fn stride(&self) -> usize {
        self.width as usize * self.bytes_per_pixel()
    }
    pub fn megapixels(&self) -> f64 {
        f64::from(self.width) * f64::from(self.height) / 1e6
    }

    /// True when there is no alpha channel or every pixel is fully opaque.
    pub fn is_opaque(&self) -> bool {
        match self.layout {
            Layout::Rgb8 => true,
            Layout::Rgba8 => self.data.chunks_exact(4).all(|px| px[3] == 255),
        }
    }

    /// Drops an alpha channel that is opaque everywhere: less memory and faster ops, and
    /// the default output becomes JPEG.
    pub fn without_opaque_alpha(self) -> Frame {
        if self.layout == Layout::Rgba8 && self.is_opaque() {
            let data = self
                .data
                .chunks_exact(4)
                .flat_map(|px| [px[0], px[1], px[2]])
                .collect();
            Frame {
                width: self.width,
                height: self.height,
                layout: Layout::Rgb8,
                data,
            }
        } else {
            self
        }
    }

    /// The grey channel (and alpha) when every pixel has R = G = B, so encoders that can
    /// write grey store one channel instead of three; `None` at the first coloured pixel.
    pub fn as_grey(&self) -> Option<Vec<u8>> {
        let bpp = self.bytes_per_pixel();
        let neutral = |px: &[u8]| px[0] == px[1] && px[1] == px[2];
        if !self.data.chunks_exact(bpp).all(neutral) {
            return None;
        }
        Some(match self.layout {
            Layout::Rgb8 => self.data.chunks_exact(3).map(|px| px[0]).collect(),
            Layout::Rgba8 => self
                .data
                .chunks_exact(4)
                .flat_map(|px| [px[0], px[3]])
                .collect(),
        })
    }

    /// RGB pixels with any transparency composited over `background`.
    pub fn flattened(self, background: [u8; 3]) -> Frame {
        if self.layout == Layout::Rgb8 {
            return self;
        }
        let mut data = Vec::with_capacity(self.width as usize * self.height as usize * 3);
        for px in self.data.chunks_exact(4) {
            let alpha = u32::from(px[3]);
            for channel in 0..3 {
                let over =
                    u32::from(px[channel]) * alpha + u32::from(background[channel]) * (255 - alpha);
                data.push(((over + 127) / 255) as u8);
            }
        }
        Frame {
            width: self.width,
            height: self.height,
            layout: Layout::Rgb8,
            data,
        }
    }
}

fn byte_len(width: u32, height: u32, layout: Layout) -> Option<usize> {
    (width as usize)
        .checked_mul(height as usize)?
        .checked_mul(layout.bytes_per_pixel())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_mismatched_buffers() {
        assert!(Frame::new(2, 2, Layout::Rgb8, vec![0; 11]).is_err());
        assert!(Frame::new(0, 2, Layout::Rgb8, vec![]).is_err());
        assert!(Frame::new(2, 2, Layout::Rgba8, vec![0; 16]).is_ok());
    }

    #[test]
    fn drops_only_opaque_alpha() {
        let opaque = Frame::new(1, 2, Layout::Rgba8, vec![1, 2, 3, 255, 4, 5, 6, 255]).unwrap();
        let rgb = opaque.without_opaque_alpha();
        assert_eq!(
            (rgb.layout(), rgb.data()),
            (Layout::Rgb8, &[1, 2, 3, 4, 5, 6][..])
        );
        let translucent = Frame::new(1, 1, Layout::Rgba8, vec![1, 2, 3, 4]).unwrap();
        assert_eq!(translucent.without_opaque_alpha().layout(), Layout::Rgba8);
    }

    #[test]
    fn flattens_over_background() {
        let half = Frame::new(1, 1, Layout::Rgba8, vec![0, 255, 100, 128]).unwrap();
        // 0*128/255 + 255*127/255 = 127; 255; (100*128 + 255*127)/255 = 177.2
        assert_eq!(half.flattened([255, 255, 255]).data(), &[127, 255, 177]);
    }
}
