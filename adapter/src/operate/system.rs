//! What the operating system says about this process: resident memory, CPU time, and the
//! disk holding the working directory (Linux `/proc` and `statvfs`; `None` elsewhere). All
//! libc calls of the bot are here.

use std::path::Path;

/// Process-wide figures, sampled on demand.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemFigures {
    /// User and system CPU time since start.
    pub cpu_seconds: Option<f64>,
    pub cpu_cores: usize,
    /// Used share (0..1) of the filesystem holding the working directory.
    pub disk_used_ratio: Option<f64>,
}

impl SystemFigures {
    pub fn sample() -> SystemFigures {
        SystemFigures {
            cpu_seconds: cpu_seconds(),
            cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            disk_used_ratio: disk_used_ratio(Path::new(".")),
        }
    }
}

/// Resident memory of this process, from `/proc/self/statm` (cheap enough to read often).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size()?)
}

fn page_size() -> Option<u64> {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&size| size > 0)
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields after its closing parenthesis
    // start at field 3, so utime and stime (fields 14 and 15) are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (user + system) as f64 / ticks as f64)
}

fn disk_used_ratio(path: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `stats` is written by statvfs before it is read.
    let stats = unsafe {
        if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    let total = stats.f_blocks as f64;
    // Like df: what ordinary users can still use counts as free.
    let used = (stats.f_blocks - stats.f_bfree) as f64;
    let available = stats.f_bavail as f64;
    (total > 0.0).then(|| used / (used + available))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_plausible_on_linux() {
        let resident = resident_bytes().expect("statm");
        assert!(resident > 1 << 20, "{resident}");
        let figures = SystemFigures::sample();
        assert!(figures.cpu_seconds.expect("stat") >= 0.0);
        let disk = figures.disk_used_ratio.expect("statvfs");
        assert!((0.0..=1.0).contains(&disk), "{disk}");
        assert!(figures.cpu_cores >= 1);
    }
}
