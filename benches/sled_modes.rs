//! Why the ingest path uses plain sled inserts: `cargo bench --bench sled_modes` times N writes
//! followed by one `flush()` as a plain insert, a 3-tree transaction and an `apply_batch`, in
//! the same run (sled 0.34).

use std::time::Instant;

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

#[derive(Clone, Copy)]
enum Mode {
    Plain,
    Transaction,
    Batch,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Plain => "plain insert (shipped)",
            Mode::Transaction => "3-tree transaction",
            Mode::Batch => "apply_batch",
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("| mode | writes per flush | ms per (writes + flush) | writes/s |");
    println!("|---|---|---|---|");
    for (n, mode) in [Mode::Plain, Mode::Transaction, Mode::Batch]
        .into_iter()
        .enumerate()
    {
        let dir =
            std::env::temp_dir().join(format!("shoprelay-sled-modes-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = sled::Config::new()
            .path(&dir)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let (a, b, c) = (db.open_tree("a")?, db.open_tree("b")?, db.open_tree("c")?);
        let rec = vec![b'x'; 300];
        for batch in [16usize, 64, 256] {
            let rounds = 100;
            let t = Instant::now();
            for r in 0..rounds {
                for i in 0..batch {
                    let k = ((batch * 1_000_000 + r * 1000 + i) as u64).to_be_bytes();
                    match mode {
                        Mode::Plain => {
                            a.insert(k, &rec[..])?;
                            b.insert(k, &[1u8][..])?;
                        }
                        Mode::Transaction => (&a, &b, &c)
                            .transaction(|(a, b, c)| {
                                if b.get(k)?.is_none() && c.get(k)?.is_none() {
                                    b.insert(&k, &[1u8][..])?;
                                    a.insert(&k, &rec[..])?;
                                }
                                Ok::<_, ConflictableTransactionError<()>>(())
                            })
                            .map_err(|e| format!("{e:?}"))?,
                        Mode::Batch => {
                            let mut bt = sled::Batch::default();
                            bt.insert(&k, &rec[..]);
                            bt.insert(&[&k[..], b"d"].concat()[..], &[1u8][..]);
                            a.apply_batch(bt)?;
                        }
                    }
                }
                db.flush()?;
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "| {} | {batch} | {:.2} | {:.0} |",
                mode.label(),
                secs * 1000.0 / rounds as f64,
                (rounds * batch) as f64 / secs
            );
        }
        drop((a, b, c, db));
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
