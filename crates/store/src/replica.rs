//! A standby's copy of the leader's store: the leader writes a consistent snapshot of its
//! database (`VACUUM INTO`, one read transaction, so never half a batch), and the standby
//! copies every table of it into its own database in one transaction. The standby's file keeps
//! its identity (the writer and the collections keep their connections to it), and after the
//! copy it holds the leader's rows with the leader's ids, so a failover keeps them as they were.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::{Error, FILE_NAME, Store, schema};

/// What the database and its WAL look like on disk: another value means something was written
/// (a commit changes the WAL's or the database's size or time). A standby that already holds
/// the snapshot of this fingerprint need not fetch another.
pub fn fingerprint(dir: &Path) -> String {
    let part = |name: &str| match std::fs::metadata(dir.join(name)) {
        Ok(m) => format!("{}.{}.{}.{}", m.ino(), m.len(), m.mtime(), m.mtime_nsec()),
        Err(_) => "-".to_owned(),
    };
    format!("{}:{}", part(FILE_NAME), part(&format!("{FILE_NAME}-wal")))
}

/// Writes a consistent copy of the store in `dir` to `into` (which must not exist).
pub fn snapshot(dir: &Path, into: &Path) -> Result<(), Error> {
    let path = dir.join(FILE_NAME);
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| Error::Open { path: path.display().to_string(), why: e.to_string() })?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute("VACUUM INTO ?1", [into.to_string_lossy()])?;
    Ok(())
}

impl Store {
    /// Makes this store hold exactly what the snapshot file `from` holds, in one transaction
    /// (readers see the old rows or the new, never a mix). A snapshot of an older schema (the
    /// leader not yet upgraded) is migrated first; a newer one is refused.
    pub fn replace_with(&mut self, from: &Path) -> Result<(), Error> {
        {
            let mut snapshot = Connection::open(from)
                .map_err(|e| Error::Open { path: from.display().to_string(), why: e.to_string() })?;
            schema::migrate(&mut snapshot)?;
        }
        self.conn.execute("ATTACH DATABASE ?1 AS snapshot", [from.to_string_lossy()])?;
        let copied = copy_tables(&mut self.conn);
        let detached = self.conn.execute("DETACH DATABASE snapshot", []);
        copied?;
        detached?;
        Ok(())
    }
}

fn copy_tables(conn: &mut Connection) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let tables: Vec<String> = tx
        .prepare("SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for table in &tables {
        // Names come from our own schema, never from the snapshot; quoted all the same.
        let table = table.replace('"', "\"\"");
        tx.execute(&format!("DELETE FROM main.\"{table}\""), [])?;
        tx.execute(&format!("INSERT INTO main.\"{table}\" SELECT * FROM snapshot.\"{table}\""), [])?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventRow, Filter, Limits, Reader, Write};

    fn event(uid: &str, at: i64) -> Write {
        Write::Event(EventRow {
            id: 0,
            uid: uid.into(),
            event_type: "cluster".into(),
            severity: "info".into(),
            title: format!("title {uid}"),
            description: "d".into(),
            object_kind: Some("Pod".into()),
            object_namespace: Some("shop".into()),
            object_name: Some("web".into()),
            reason: Some("Pulled".into()),
            count: 1,
            first_seen: at,
            last_seen: at,
        })
    }

    fn listed(dir: &Path) -> Vec<(i64, String)> {
        let reader = Reader::open(dir).unwrap();
        reader
            .events(&Filter { limit: 100, ..Default::default() })
            .unwrap()
            .into_iter()
            .map(|e| (e.id, e.uid))
            .collect()
    }

    #[test]
    fn a_standby_copy_holds_the_leaders_rows_with_their_ids_and_drops_its_own() {
        let leader_dir = tempfile::tempdir().unwrap();
        let standby_dir = tempfile::tempdir().unwrap();
        let now = 1_800_000_000_000;
        let mut leader = Store::open(leader_dir.path(), Limits::default()).unwrap();
        leader.write(&[event("b", now), event("a", now + 1)]).unwrap();
        let mut standby = Store::open(standby_dir.path(), Limits::default()).unwrap();
        // Rows the standby wrote itself (ids that would clash with the leader's) do not survive.
        standby.write(&[event("own", now + 2)]).unwrap();

        let before = fingerprint(leader_dir.path());
        let copy = standby_dir.path().join("incoming.db");
        snapshot(leader_dir.path(), &copy).unwrap();
        standby.replace_with(&copy).unwrap();
        assert_eq!(listed(standby_dir.path()), listed(leader_dir.path()));
        assert_eq!(listed(standby_dir.path()).len(), 2);

        // The leader writes again: its fingerprint changes and the next copy follows.
        leader.write(&[event("c", now + 3)]).unwrap();
        assert_ne!(fingerprint(leader_dir.path()), before);
        std::fs::remove_file(&copy).unwrap();
        snapshot(leader_dir.path(), &copy).unwrap();
        standby.replace_with(&copy).unwrap();
        let rows = listed(standby_dir.path());
        assert_eq!(rows, listed(leader_dir.path()));
        assert_eq!(rows.iter().map(|(_, uid)| uid.as_str()).collect::<Vec<_>>(), ["c", "a", "b"]);
        // The standby's own writer goes on in the same file afterwards.
        standby.write(&[event("d", now + 4)]).unwrap();
        assert_eq!(listed(standby_dir.path()).len(), 4);
    }

    #[test]
    fn a_snapshot_of_an_older_schema_is_migrated_and_a_newer_one_refused() {
        let old_dir = tempfile::tempdir().unwrap();
        let standby_dir = tempfile::tempdir().unwrap();
        let old = old_dir.path().join(FILE_NAME);
        {
            let mut conn = Connection::open(&old).unwrap();
            schema::migrate_to(&mut conn, 1).unwrap();
            conn.execute(
                "INSERT INTO events (uid, event_type, severity, title, description, count, first_seen, last_seen)
                 VALUES ('old', 'cluster', 'info', 't', 'd', 1, 5, 5)",
                [],
            )
            .unwrap();
        }
        let mut standby = Store::open(standby_dir.path(), Limits::default()).unwrap();
        standby.replace_with(&old).unwrap();
        assert_eq!(listed(standby_dir.path()).into_iter().map(|(_, uid)| uid).collect::<Vec<_>>(), ["old"]);

        let newer = old_dir.path().join("newer.db");
        Connection::open(&newer).unwrap().pragma_update(None, "user_version", schema::CURRENT + 1).unwrap();
        let refused = standby.replace_with(&newer).unwrap_err();
        assert_eq!(refused.code(), "store-newer-schema");
        assert_eq!(listed(standby_dir.path()).len(), 1, "the rows stay when a snapshot is refused");
    }
}
