//! Peer exchange (BEP 11, `ut_pex`): a peer that joins while the tracker is
//! down finds the swarm from the one peer it can reach.

mod common;

use common::*;

const PIECE: u32 = 32 * 1024;

#[test]
fn a_leecher_that_knows_only_one_leecher_finds_the_seeder_through_pex() {
    // A slow seeder: leecher A is still downloading when B joins, so A is
    // still connected to it (two complete peers would part).
    let size = 4 * 1024 * 1024 + 777;
    let mut sw = swarm_with(
        "pex",
        "p.bin",
        size,
        PIECE,
        &["--max-upload-rate", "256k", "--no-discover"],
    );
    let seeder = format!("127.0.0.1:{}", sw.seeder.port());
    let t = sw.tracker.arg();

    // A: a leecher that keeps running (and seeding) once done.
    let adir = sw.tmp.sub("a");
    let a = Proc::mt(
        "a",
        &[
            "get",
            sw.torrent.to_str().unwrap(),
            "--dir",
            adir.to_str().unwrap(),
            "--tracker",
            &t,
            "--no-discover",
        ],
    );
    let a_addr = format!("127.0.0.1:{}", a.port());
    a.err
        .wait_for(&format!("connected to outbound {seeder}"), TIMEOUT);

    // Every tracker gone: B knows A's address and nothing else.
    sw.tracker.proc.kill();
    let bdir = sw.tmp.sub("b");
    let magnet = format!("magnet:?xt=urn:btih:{}&x.pe={a_addr}", sw.ih.to_hex());
    let mut b = Proc::mt(
        "b",
        &[
            "get",
            &magnet,
            "--no-seed",
            "--dir",
            bdir.to_str().unwrap(),
            "--tracker",
            &t,
            "--no-discover",
            "--trace",
        ],
    );
    let st = b.wait(TIMEOUT);
    assert!(st.success(), "B failed: {st}\n{}\n{}", b.dump(), a.dump());
    assert_same_file(&sw.data, &bdir.join("p.bin"));
    // A told B of the seeder (by its listen address), B dialled it and
    // fetched from it.
    let pex = format!("{a_addr} → ");
    assert!(
        b.err
            .text()
            .lines()
            .any(|l| l.contains(&pex) && l.contains("PEX added") && l.contains(&seeder)),
        "no PEX from A naming the seeder in B's trace\n{}",
        b.dump()
    );
    assert!(
        b.err.contains(&format!("connected to outbound {seeder}")),
        "{}",
        b.dump()
    );
    assert!(
        b.out.contains(&format!("from {seeder}: ")),
        "B's summary names no bytes from the seeder\n{}",
        b.dump()
    );
}
