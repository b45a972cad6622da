//! Reading the files a job directory holds: a job file, and the `targets_file` a job
//! names, confined to the jobs directory. Every read is bounded by [`MAX_FILE_BYTES`]
//! and refuses what is not a regular file (a device, a FIFO, a directory), so no file
//! can make loading block or grow without bound. Errors name the path as written
//! (escaped and cut, [`crate::words::shown`]) and never quote the file's contents.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use super::report::io_reason;
use crate::words::shown;

/// The most bytes a job file or a targets file may hold: 4 MiB, some 100,000 targets
/// of a typical length, a hundred bulk calls' worth. A larger file is refused
/// unread, and no read takes more than this.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Where the targets file `rel` (as a job file writes it) is: inside `base`, the jobs
/// directory, once every symbolic link and `..` is resolved. An absolute path, a path
/// that leaves `base` (by `..` or a link pointing out) or one that cannot be resolved
/// is refused, with why.
pub(super) fn confine(base: &Path, rel: &str) -> Result<PathBuf, String> {
    let written = Path::new(rel);
    if written.is_absolute() || written.components().any(|c| c == Component::RootDir) {
        return Err(format!(
            "`{}` is an absolute path: a targets file is named relative to the jobs directory, and must be inside it",
            shown(rel)
        ));
    }
    // Lexically first: a path that climbs out is refused without looking at what it
    // names, so a job file cannot probe which files exist outside.
    let mut depth = 0usize;
    for c in written.components() {
        match c {
            Component::ParentDir if depth == 0 => return Err(leaves(rel)),
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let path = base.join(written);
    let root = base.canonicalize().map_err(|e| {
        format!(
            "cannot resolve the jobs directory {}: {}",
            shown(&base.display().to_string()),
            io_reason(&e)
        )
    })?;
    let real = path.canonicalize().map_err(|e| {
        format!(
            "cannot read {}: {}",
            shown(&path.display().to_string()),
            io_reason(&e)
        )
    })?;
    if !real.starts_with(&root) {
        return Err(leaves(rel));
    }
    Ok(real)
}

fn leaves(rel: &str) -> String {
    format!(
        "`{}` leads outside the jobs directory: a targets file must be inside it (a link out of it is refused too)",
        shown(rel)
    )
}

/// Why a file could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReadError {
    /// It does not exist, cannot be opened, or reading it failed.
    Io(String),
    /// It is no regular file: what it is instead.
    NotAFile(&'static str),
    /// It holds more than [`MAX_FILE_BYTES`]; its size when known.
    TooLarge(Option<u64>),
    /// It is not UTF-8 text: the line the first byte that is not is on.
    NotText { line: usize },
}

impl ReadError {
    /// The reason, for a message that has already named the file.
    pub(super) fn reason(&self) -> String {
        match self {
            ReadError::Io(why) => why.clone(),
            ReadError::NotAFile(what) => format!("it is {what}, not a regular file"),
            ReadError::TooLarge(Some(n)) => format!(
                "it holds {n} bytes, more than the {MAX_FILE_BYTES} ({} MiB) a file may",
                MAX_FILE_BYTES >> 20
            ),
            ReadError::TooLarge(None) => format!(
                "it holds more than the {MAX_FILE_BYTES} bytes ({} MiB) a file may",
                MAX_FILE_BYTES >> 20
            ),
            ReadError::NotText { line } => format!("line {line} is not UTF-8 text"),
        }
    }
}

/// The text of the regular file at `path`, at most [`MAX_FILE_BYTES`] of it. What is
/// not a regular file is refused before it is opened (a FIFO would block the open)
/// and again once it is (it may have been replaced in between); the file is opened
/// without blocking and read through a bound, so a file that grows while it is read
/// is refused too.
pub(super) fn read_bounded(path: &Path) -> Result<String, ReadError> {
    let meta = std::fs::metadata(path).map_err(|e| ReadError::Io(io_reason(&e)))?;
    check_kind(&meta)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|e| ReadError::Io(io_reason(&e)))?;
    check_kind(&file.metadata().map_err(|e| ReadError::Io(io_reason(&e)))?)?;
    read_text(file)
}

fn check_kind(meta: &std::fs::Metadata) -> Result<(), ReadError> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        return if meta.len() > MAX_FILE_BYTES {
            Err(ReadError::TooLarge(Some(meta.len())))
        } else {
            Ok(())
        };
    }
    Err(ReadError::NotAFile(if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "something else"
    }))
}

/// At most [`MAX_FILE_BYTES`] of `source`, as UTF-8 text.
fn read_text(source: impl Read) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    source
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io(io_reason(&e)))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(None));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        ReadError::NotText {
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_that_never_ends_is_read_only_up_to_the_bound() {
        // `/dev/zero` as a reader: endless.
        let endless = std::io::repeat(b'a');
        assert_eq!(read_text(endless), Err(ReadError::TooLarge(None)));
        let exact = vec![b'a'; MAX_FILE_BYTES as usize];
        assert_eq!(read_text(&exact[..]).unwrap().len(), exact.len());
    }

    #[test]
    fn bytes_that_are_not_utf8_name_their_line_and_nothing_of_the_text() {
        let e = read_text(&b"a.com\nb.com\n\xff secret\n"[..]).unwrap_err();
        assert_eq!(e, ReadError::NotText { line: 3 });
        assert_eq!(e.reason(), "line 3 is not UTF-8 text");
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_unopened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Opening a FIFO with no writer would block: it is refused before.
        assert_eq!(read_bounded(&fifo), Err(ReadError::NotAFile("a FIFO")));
        assert_eq!(
            read_bounded(Path::new("/dev/zero")),
            Err(ReadError::NotAFile("a device"))
        );
        assert_eq!(
            read_bounded(dir.path()),
            Err(ReadError::NotAFile("a directory"))
        );
        let big = dir.path().join("big.txt");
        std::fs::write(&big, vec![b'a'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert_eq!(
            read_bounded(&big),
            Err(ReadError::TooLarge(Some(MAX_FILE_BYTES + 1)))
        );
    }

    #[test]
    fn a_targets_file_is_confined_to_the_jobs_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let jobs = tmp.path().join("jobs");
        std::fs::create_dir_all(jobs.join("targets")).unwrap();
        std::fs::write(jobs.join("targets/a.txt"), "a.com\n").unwrap();
        std::fs::write(tmp.path().join("secret"), "x\n").unwrap();
        std::os::unix::fs::symlink("../secret", jobs.join("out.txt")).unwrap();
        std::os::unix::fs::symlink("targets/a.txt", jobs.join("in.txt")).unwrap();
        let real = jobs.join("targets/a.txt").canonicalize().unwrap();

        assert_eq!(confine(&jobs, "targets/a.txt").unwrap(), real);
        // `..` that stays inside, and a link that stays inside, are fine.
        assert_eq!(confine(&jobs, "targets/../targets/a.txt").unwrap(), real);
        assert_eq!(confine(&jobs, "in.txt").unwrap(), real);

        let e = confine(&jobs, "/etc/passwd").unwrap_err();
        assert!(e.starts_with("`/etc/passwd` is an absolute path"), "{e}");
        for rel in ["../secret", "out.txt", "targets/../../secret"] {
            let e = confine(&jobs, rel).unwrap_err();
            assert!(e.contains("leads outside the jobs directory"), "{rel}: {e}");
        }
        let e = confine(&jobs, "nope.txt").unwrap_err();
        assert!(
            e.starts_with("cannot read ") && e.ends_with("nope.txt: No such file or directory"),
            "{e}"
        );
        let e = confine(&jobs, "../\u{1b}[2J").unwrap_err();
        assert!(!e.contains('\u{1b}'), "{e:?}");
    }
}
