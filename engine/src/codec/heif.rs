//! HEIF (HEVC, what iPhones store) and AVIF input through libheif, the C library libvips,
//! ImageMagick and GIMP read them with. No Rust decoder exists for HEVC, and Debian's one
//! libheif (1.15, package `libheif1`) decodes both: HEVC with libde265, AV1 with dav1d.
//!
//! The library is opened at run time (`libheif.so.1`), not linked: building Prism needs no
//! C headers or toolchain, and a machine without libheif refuses HEIF and AVIF with an
//! `unsupported` error that names the package, while every other format works. The only
//! module that calls libheif.
//!
//! libheif applies the file's own rotation, mirroring and cropping (`irot`, `imir`,
//! `clap`) while decoding, so the probed size is the displayed one and there is no EXIF
//! orientation to apply on top (HEIF says the EXIF tag must be ignored).

use std::ffi::{CStr, c_char, c_int, c_void};
use std::marker::PhantomData;
use std::ptr;
use std::sync::OnceLock;

use super::{Decoded, ImageInfo};
use crate::colour;
use crate::error::Error;
use crate::format::ImageFormat;
use crate::frame::{Frame, Layout};
use crate::orientation::Orientation;

const LIBRARY: &str = "libheif.so.1";
/// `heif_init` and the decoding options used here appeared in 1.13.
const MIN_VERSION: u32 = 0x01_0d_00_00;

/// `struct heif_error`: a code, a finer code, and a message owned by libheif.
#[repr(C)]
struct HeifError {
    code: c_int,
    subcode: c_int,
    message: *const c_char,
}

const ERROR_OK: c_int = 0;
const ERROR_UNSUPPORTED_FILETYPE: c_int = 3;
const ERROR_UNSUPPORTED_FEATURE: c_int = 4;
const ERROR_MEMORY_ALLOCATION: c_int = 6;
const SUBERROR_END_OF_DATA: c_int = 100;
const SUBERROR_SECURITY_LIMIT_EXCEEDED: c_int = 1000;

/// `struct heif_decoding_options` up to version 4 (libheif 1.15); always allocated by
/// libheif, which fills in the defaults of its own version.
#[repr(C)]
struct DecodingOptions {
    version: u8,
    ignore_transformations: u8,
    start_progress: *const c_void,
    on_progress: *const c_void,
    end_progress: *const c_void,
    progress_user_data: *mut c_void,
    // Version 2.
    convert_hdr_to_8bit: u8,
}

/// `struct heif_color_profile_nclx`, the fields read here (version 1).
#[repr(C)]
struct Nclx {
    version: u8,
    color_primaries: c_int,
    transfer_characteristics: c_int,
}

/// Opaque libheif objects.
#[repr(C)]
struct RawContext([u8; 0]);
#[repr(C)]
struct RawHandle([u8; 0]);
#[repr(C)]
struct RawImage([u8; 0]);

const COLORSPACE_RGB: c_int = 1;
const CHROMA_INTERLEAVED_RGB: c_int = 10;
const CHROMA_INTERLEAVED_RGBA: c_int = 11;
const CHANNEL_INTERLEAVED: c_int = 10;
const PROFILE_NCLX: c_int = fourcc(b"nclx");
const PROFILE_RICC: c_int = fourcc(b"rICC");
const PROFILE_PROF: c_int = fourcc(b"prof");

const fn fourcc(code: &[u8; 4]) -> c_int {
    i32::from_be_bytes(*code)
}

/// Declares the libheif functions used here and loads them all, or none.
macro_rules! libheif_functions {
    ($($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        struct Api {
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
            /// Keeps the functions above mapped.
            _library: libloading::Library,
        }

        impl Api {
            /// # Safety
            /// `library` must be libheif, whose functions have the signatures above.
            unsafe fn load(library: libloading::Library) -> Result<Api, libloading::Error> {
                Ok(Api {
                    $($name: *unsafe { library.get(concat!(stringify!($name), "\0").as_bytes()) }?,)*
                    _library: library,
                })
            }
        }
    };
}

libheif_functions! {
    heif_get_version_number: fn() -> u32;
    heif_init: fn(*const c_void) -> HeifError;
    heif_context_alloc: fn() -> *mut RawContext;
    heif_context_free: fn(*mut RawContext);
    heif_context_read_from_memory_without_copy:
        fn(*mut RawContext, *const c_void, usize, *const c_void) -> HeifError;
    heif_context_set_max_decoding_threads: fn(*mut RawContext, c_int);
    heif_context_get_primary_image_handle: fn(*mut RawContext, *mut *mut RawHandle) -> HeifError;
    heif_image_handle_release: fn(*const RawHandle);
    heif_image_handle_get_width: fn(*const RawHandle) -> c_int;
    heif_image_handle_get_height: fn(*const RawHandle) -> c_int;
    heif_image_handle_has_alpha_channel: fn(*const RawHandle) -> c_int;
    heif_image_handle_get_color_profile_type: fn(*const RawHandle) -> c_int;
    heif_image_handle_get_raw_color_profile_size: fn(*const RawHandle) -> usize;
    heif_image_handle_get_raw_color_profile: fn(*const RawHandle, *mut c_void) -> HeifError;
    heif_image_handle_get_nclx_color_profile: fn(*const RawHandle, *mut *mut Nclx) -> HeifError;
    heif_nclx_color_profile_free: fn(*mut Nclx);
    heif_decoding_options_alloc: fn() -> *mut DecodingOptions;
    heif_decoding_options_free: fn(*mut DecodingOptions);
    heif_decode_image:
        fn(*const RawHandle, *mut *mut RawImage, c_int, c_int, *const DecodingOptions) -> HeifError;
    heif_image_get_width: fn(*const RawImage, c_int) -> c_int;
    heif_image_get_height: fn(*const RawImage, c_int) -> c_int;
    heif_image_get_plane_readonly: fn(*const RawImage, c_int, *mut c_int) -> *const u8;
    heif_image_release: fn(*const RawImage);
}

/// libheif once loaded and initialised, or why it cannot be.
fn api() -> Result<&'static Api, Error> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| {
        // SAFETY: libheif's initialisers have no preconditions, and the names resolved are
        // libheif's own exported functions with the declared signatures.
        let api = unsafe {
            let library = libloading::Library::new(LIBRARY)
                .map_err(|e| format!("{LIBRARY} could not be loaded ({e})"))?;
            Api::load(library).map_err(|e| format!("{LIBRARY} is incomplete ({e})"))?
        };
        // SAFETY: no arguments to check.
        let version = unsafe { (api.heif_get_version_number)() };
        if version < MIN_VERSION {
            return Err(format!("libheif {version:#010x} is older than 1.13"));
        }
        // SAFETY: null asks for the default parameters; never deinitialised, so it stays
        // valid for the process.
        let initialised = unsafe { (api.heif_init)(ptr::null()) };
        if initialised.code != ERROR_OK {
            return Err(format!("libheif failed to start: {}", message(&initialised)));
        }
        Ok(api)
    })
    .as_ref()
    .map_err(|why| {
        Error::Unsupported(format!(
            "HEIF and AVIF input needs libheif 1.13 or newer (Debian: apt-get install libheif1): {why}"
        ))
    })
}

/// Whether this machine can decode HEIF and AVIF, and if not, why.
pub(crate) fn availability() -> Result<(), Error> {
    api().map(|_| ())
}

fn message(error: &HeifError) -> String {
    if error.message.is_null() {
        return "no details".into();
    }
    // SAFETY: libheif's messages are NUL-terminated and live at least as long as the
    // context that produced them, which outlives this call.
    unsafe { CStr::from_ptr(error.message) }
        .to_string_lossy()
        .into_owned()
}

/// A libheif result as ours: out of memory or over its own security limits is `Limits`,
/// a coding libheif cannot decode is `Unsupported`, anything else is a malformed file.
fn check(error: HeifError, format: ImageFormat) -> Result<(), Error> {
    let text = message(&error);
    match (error.code, error.subcode) {
        (ERROR_OK, _) => Ok(()),
        (ERROR_MEMORY_ALLOCATION, _) | (_, SUBERROR_SECURITY_LIMIT_EXCEEDED) => {
            Err(Error::Limits(format!("{format}: {text}")))
        }
        (ERROR_UNSUPPORTED_FILETYPE | ERROR_UNSUPPORTED_FEATURE, _) => {
            Err(Error::Unsupported(format!("{format}: {text}")))
        }
        (_, SUBERROR_END_OF_DATA) => Err(Error::malformed(format, format!("truncated: {text}"))),
        _ => Err(Error::malformed(format, text)),
    }
}

/// A parsed file; it reads from `bytes` without copying them, so it borrows them.
struct Context<'a> {
    api: &'static Api,
    raw: *mut RawContext,
    format: ImageFormat,
    _bytes: PhantomData<&'a [u8]>,
}

impl<'a> Context<'a> {
    fn read(bytes: &'a [u8], format: ImageFormat) -> Result<Context<'a>, Error> {
        let api = api()?;
        // SAFETY: allocation has no preconditions; a null result is checked.
        let raw = unsafe { (api.heif_context_alloc)() };
        if raw.is_null() {
            return Err(Error::Limits("libheif could not allocate a context".into()));
        }
        let context = Context {
            api,
            raw,
            format,
            _bytes: PhantomData,
        };
        // SAFETY: `raw` is a live context, and `bytes` outlives it (the lifetime 'a).
        // Tiles are decoded on the calling thread: the pool already runs one job per core.
        unsafe {
            (api.heif_context_set_max_decoding_threads)(raw, 0);
            check(
                (api.heif_context_read_from_memory_without_copy)(
                    raw,
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    ptr::null(),
                ),
                format,
            )?;
        }
        Ok(context)
    }

    fn primary_image(&self) -> Result<Handle<'_>, Error> {
        let mut raw = ptr::null_mut();
        // SAFETY: a live context and a valid out-pointer; the handle is checked for null.
        check(
            unsafe { (self.api.heif_context_get_primary_image_handle)(self.raw, &mut raw) },
            self.format,
        )?;
        if raw.is_null() {
            return Err(Error::malformed(self.format, "no primary image"));
        }
        Ok(Handle { context: self, raw })
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: allocated by heif_context_alloc and freed once, here.
        unsafe { (self.api.heif_context_free)(self.raw) }
    }
}

/// The primary image of a file, not yet decoded.
struct Handle<'c> {
    context: &'c Context<'c>,
    raw: *mut RawHandle,
}

impl Handle<'_> {
    fn api(&self) -> &'static Api {
        self.context.api
    }

    /// Width and height as displayed (after the file's rotation and cropping).
    fn dimensions(&self) -> Result<(u32, u32), Error> {
        // SAFETY: a live handle.
        let (width, height) = unsafe {
            (
                (self.api().heif_image_handle_get_width)(self.raw),
                (self.api().heif_image_handle_get_height)(self.raw),
            )
        };
        match (u32::try_from(width), u32::try_from(height)) {
            (Ok(width), Ok(height)) => Ok((width, height)),
            _ => Err(Error::malformed(self.context.format, "negative dimensions")),
        }
    }

    fn has_alpha(&self) -> bool {
        // SAFETY: a live handle.
        unsafe { (self.api().heif_image_handle_has_alpha_channel)(self.raw) != 0 }
    }

    /// The image's colour profile as ICC bytes: the embedded ICC profile, or one built from
    /// its `nclx` primaries and transfer curve when those are not sRGB's. `None` for sRGB.
    fn colour_profile(&self) -> Result<Option<Vec<u8>>, Error> {
        // SAFETY: a live handle.
        match unsafe { (self.api().heif_image_handle_get_color_profile_type)(self.raw) } {
            PROFILE_PROF | PROFILE_RICC => self.icc_profile().map(Some),
            PROFILE_NCLX => Ok(self.nclx_profile()),
            _ => Ok(None),
        }
    }

    fn icc_profile(&self) -> Result<Vec<u8>, Error> {
        // SAFETY: a live handle; the buffer is as long as libheif says the profile is.
        unsafe {
            let size = (self.api().heif_image_handle_get_raw_color_profile_size)(self.raw);
            let mut icc = vec![0u8; size];
            check(
                (self.api().heif_image_handle_get_raw_color_profile)(
                    self.raw,
                    icc.as_mut_ptr().cast(),
                ),
                self.context.format,
            )?;
            Ok(icc)
        }
    }

    /// Unreadable or out-of-range `nclx` values are read as sRGB, as browsers do.
    fn nclx_profile(&self) -> Option<Vec<u8>> {
        let mut nclx = ptr::null_mut();
        // SAFETY: a live handle and a valid out-pointer; the profile is read only when
        // libheif returned one, and freed once.
        unsafe {
            let got = (self.api().heif_image_handle_get_nclx_color_profile)(self.raw, &mut nclx);
            if got.code != ERROR_OK || nclx.is_null() {
                return None;
            }
            let (primaries, transfer) = ((*nclx).color_primaries, (*nclx).transfer_characteristics);
            (self.api().heif_nclx_color_profile_free)(nclx);
            colour::icc_from_cicp(u8::try_from(primaries).ok()?, u8::try_from(transfer).ok()?)
        }
    }

    /// Decodes to interleaved 8-bit RGB or RGBA (HDR is reduced to 8 bits by libheif).
    fn decode(&self, expected: (u32, u32)) -> Result<Frame, Error> {
        let format = self.context.format;
        let (chroma, layout) = if self.has_alpha() {
            (CHROMA_INTERLEAVED_RGBA, Layout::Rgba8)
        } else {
            (CHROMA_INTERLEAVED_RGB, Layout::Rgb8)
        };
        let api = self.api();
        let mut raw = ptr::null_mut();
        // SAFETY: options come from libheif's allocator (so they hold its version's
        // defaults) and version 2's field is written only when present; a live handle and
        // a valid out-pointer; the image is checked for null.
        unsafe {
            let options = (api.heif_decoding_options_alloc)();
            if !options.is_null() && (*options).version >= 2 {
                (*options).convert_hdr_to_8bit = 1;
            }
            let decoded =
                (api.heif_decode_image)(self.raw, &mut raw, COLORSPACE_RGB, chroma, options);
            if !options.is_null() {
                (api.heif_decoding_options_free)(options);
            }
            check(decoded, format)?;
        }
        if raw.is_null() {
            return Err(Error::malformed(format, "libheif returned no image"));
        }
        let image = Image { api, raw };
        image.to_frame(layout, expected, format)
    }
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        // SAFETY: obtained from libheif and released once, here.
        unsafe { (self.api().heif_image_handle_release)(self.raw) }
    }
}

/// Decoded pixels, owned by libheif.
struct Image {
    api: &'static Api,
    raw: *mut RawImage,
}

impl Image {
    /// Copies the interleaved plane into a frame. A size other than the probed one is
    /// refused before the copy, so a lying header cannot make it allocate more than the job
    /// reserved (`codec::decode` checks every format's size again afterwards).
    fn to_frame(
        &self,
        layout: Layout,
        expected: (u32, u32),
        format: ImageFormat,
    ) -> Result<Frame, Error> {
        let mut stride: c_int = 0;
        // SAFETY: a live image; the plane pointer is checked for null, and rows are read
        // within the stride and height libheif reports for it.
        unsafe {
            let width = (self.api.heif_image_get_width)(self.raw, CHANNEL_INTERLEAVED);
            let height = (self.api.heif_image_get_height)(self.raw, CHANNEL_INTERLEAVED);
            let plane = (self.api.heif_image_get_plane_readonly)(
                self.raw,
                CHANNEL_INTERLEAVED,
                &mut stride,
            );
            let (Ok(width), Ok(height), Ok(stride)) = (
                u32::try_from(width),
                u32::try_from(height),
                usize::try_from(stride),
            ) else {
                return Err(Error::malformed(format, "decoded image has no size"));
            };
            if plane.is_null() {
                return Err(Error::malformed(format, "decoded image has no pixels"));
            }
            if (width, height) != expected {
                return Err(Error::malformed(
                    format,
                    format!(
                        "decoded {width}x{height}, not the {}x{} of its header",
                        expected.0, expected.1
                    ),
                ));
            }
            let row = width as usize * layout.bytes_per_pixel();
            if stride < row {
                return Err(Error::malformed(
                    format,
                    "decoded rows shorter than the width",
                ));
            }
            let mut pixels = Vec::new();
            pixels
                .try_reserve_exact(row * height as usize)
                .map_err(|_| Error::Limits(format!("{width}x{height} does not fit in memory")))?;
            for y in 0..height as usize {
                pixels.extend_from_slice(std::slice::from_raw_parts(plane.add(y * stride), row));
            }
            Frame::new(width, height, layout, pixels)
        }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: obtained from heif_decode_image and released once, here.
        unsafe { (self.api.heif_image_release)(self.raw) }
    }
}

pub(super) fn probe(bytes: &[u8], format: ImageFormat) -> Result<ImageInfo, Error> {
    let context = Context::read(bytes, format)?;
    let image = context.primary_image()?;
    let (width, height) = image.dimensions()?;
    Ok(ImageInfo {
        format,
        width,
        height,
        orientation: Orientation::Normal,
        has_icc_profile: image.colour_profile()?.is_some(),
        has_alpha: image.has_alpha(),
        byte_len: bytes.len(),
    })
}

/// Whether every top-level box is whole: a cut file ends inside its last box (the image
/// data, `mdat`, comes last in practice), so its declared size runs past the end.
pub(super) fn is_complete(bytes: &[u8]) -> bool {
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 8) else {
            return false;
        };
        let size = match u32::from_be_bytes([header[0], header[1], header[2], header[3]]) {
            0 => return true, // the box runs to the end of the file
            1 => match bytes.get(at + 8..at + 16) {
                Some(large) => u64::from_be_bytes(large.try_into().unwrap_or_default()),
                None => return false,
            },
            size => u64::from(size),
        };
        if size < 8 {
            return false;
        }
        match usize::try_from(size)
            .ok()
            .and_then(|size| at.checked_add(size))
        {
            Some(end) if end <= bytes.len() => at = end,
            _ => return false,
        }
    }
    true
}

pub(super) fn decode(bytes: &[u8], info: &ImageInfo) -> Result<Decoded, Error> {
    let context = Context::read(bytes, info.format)?;
    let image = context.primary_image()?;
    let frame = image.decode((info.width, info.height))?;
    Ok(Decoded {
        frame,
        icc_profile: image.colour_profile()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn a_file_is_complete_when_its_last_box_is() {
        let file = [boxed(b"ftyp", b"heic\0\0\0\0"), boxed(b"mdat", &[7; 100])].concat();
        assert!(is_complete(&file));
        // A cut between two boxes passes this check; libheif then finds the data missing.
        for cut in (1..file.len()).filter(|&cut| cut != 16) {
            assert!(!is_complete(&file[..cut]), "cut at {cut}");
        }
        // Size 0: the last box runs to the end of the file.
        let open_ended = [
            boxed(b"ftyp", b"heic\0\0\0\0"),
            b"\0\0\0\0mdat\x07".to_vec(),
        ]
        .concat();
        assert!(is_complete(&open_ended));
        // A size below the box header's own is malformed.
        assert!(!is_complete(b"\0\0\0\x04ftyp"));
    }
}
