//! One server per SQLite database: [`DataLock`], an exclusive lock on `<database file>.lock`
//! (`./data/registry.db.lock` by default), held for the life of the process.
//!
//! Each server caches what it read, and SQLite has no channel to tell another process that a
//! row changed, so a second server on the same file would serve stale data. The lock is the
//! operating system's (`flock` on Unix): it goes with the process, however it ends, so a
//! `kill -9` leaves no stale lock behind. The file keeps the PID of the holder, for the message
//! a second server exits with; the file itself is left in place (removing it would race with a
//! server taking it).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An exclusive lock on a database's lock file; released when dropped.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{database} is in use by another server ({holder}; lock file {lock}): stop that server, \
         or give this one another --data-dir or --database-url"
    )]
    Held {
        database: String,
        lock: String,
        holder: String,
    },
    #[error("cannot lock {lock}")]
    Io {
        lock: String,
        source: std::io::Error,
    },
}

impl DataLock {
    /// Takes the lock of the SQLite database at `database` (whose directory must exist), or
    /// fails at once if another process holds it.
    pub fn acquire(database: &Path) -> Result<DataLock, LockError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let io = |source| LockError::Io {
            lock: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("PID {pid}"),
                    Err(_) => "PID unknown".to_string(),
                };
                return Err(LockError::Held {
                    database: database.display().to_string(),
                    lock: path.display().to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(DataLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = dir.path().join("registry.db");
        let first = DataLock::acquire(&db).expect("first lock");
        let text = std::fs::read_to_string(first.path()).expect("lock file");
        assert_eq!(text.trim(), std::process::id().to_string());
        let err = DataLock::acquire(&db).expect_err("second lock");
        let message = err.to_string();
        assert!(
            message.contains(&format!("PID {}", std::process::id())),
            "{message}"
        );
        drop(first);
        DataLock::acquire(&db).expect("free again once dropped");
    }
}
