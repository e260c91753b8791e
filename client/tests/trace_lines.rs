//! What `--trace` shows beyond the messages themselves: a line per piece
//! checked (SHA-1 ok or mismatch), and a swarm that does not churn
//! INTERESTED / NOT INTERESTED / CHOKE / UNCHOKE.

mod common;

use std::collections::HashSet;

use common::*;

const PIECE: u32 = 32 * 1024;

#[test]
fn trace_shows_the_sha1_verdict_of_every_piece() {
    let size = 2 * 1024 * 1024;
    let (sw, (bad_port, _)) = swarm_after(
        "trace-sha1",
        "v.bin",
        size,
        PIECE,
        &["--max-upload-rate", "2M"],
        |tracker, torrent| start_corrupt_seeder(tracker, torrent, "v.bin", size),
    );
    let (tracker, tmp, data, torrent) = (&sw.tracker, &sw.tmp, &sw.data, &sw.torrent);
    let pieces = metainfo_of(torrent).info.pieces.len();

    let l = tmp.sub("l");
    let g = get_ok(
        "leecher",
        tracker,
        torrent.to_str().unwrap(),
        &l,
        &["--trace"],
    );
    assert_same_file(data, &l.join("v.bin"));
    let trace = g.err.text();
    // `HH:MM:SS.mmm peer OUR_ADDR  piece I SHA-1 ok (N bytes from ADDR)`
    let mut ok = HashSet::new();
    for line in trace.lines().filter(|l| l.contains(" SHA-1 ok (")) {
        assert!(line.contains(" peer 127.0.0.1:"), "{line}");
        let i: usize = line
            .split("piece ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no piece index in {line:?}"));
        assert!(i < pieces, "{line}");
        assert!(line.contains(&format!("({PIECE} bytes from 127.0.0.1:")) || i == pieces - 1);
        if !line.contains("already had") {
            assert!(ok.insert(i), "piece {i} verified twice as new\n{trace}");
        }
    }
    assert_eq!(ok.len(), pieces, "not every piece has an ok line\n{trace}");
    let bad = format!("SHA-1 MISMATCH from 127.0.0.1:{bad_port} (strike");
    for n in ["1/3)", "2/3)", "3/3: dropped)"] {
        assert!(
            trace.contains(&format!("{bad} {n}")),
            "no {bad} {n} line\n{trace}"
        );
    }
}

/// Two leechers that trade pieces near the end used to send INTERESTED,
/// UNCHOKE, NOT INTERESTED and CHOKE to each other for every HAVE.
#[test]
fn two_leechers_do_not_churn_interest_or_choke() {
    // A slow seeder: the leechers get much of the file from each other.
    let sw = swarm_with(
        "trace-churn",
        "w.bin",
        2 * 1024 * 1024,
        PIECE,
        &["--max-upload-rate", "1M"],
    );
    let (tracker, tmp, data, torrent) = (&sw.tracker, &sw.tmp, &sw.data, &sw.torrent);
    let dirs = [tmp.sub("a"), tmp.sub("b")];
    let mut leechers: Vec<Proc> = dirs
        .iter()
        .map(|d| {
            start_get(
                "leecher",
                tracker,
                torrent.to_str().unwrap(),
                d,
                &["--trace"],
            )
        })
        .collect();
    for (l, d) in leechers.iter_mut().zip(&dirs) {
        let st = l.wait(TIMEOUT);
        assert!(st.success(), "{}", l.dump());
        assert_same_file(data, &d.join("w.bin"));
    }
    let mut traded = false;
    for l in &leechers {
        let trace = l.err.text();
        let lines = |what: &str| {
            trace
                .lines()
                .filter(|l| l.contains(" peer ") && l.ends_with(what))
                .count()
        };
        // Per leecher, sent and received: INTERESTED once per connection
        // and direction, NOT INTERESTED at the end, and the UNCHOKEs
        // answering them. 64 pieces used to give over a hundred.
        let interest = lines(" INTERESTED");
        let choke = lines("CHOKE");
        assert!(
            interest <= 12,
            "{interest} INTERESTED / NOT INTERESTED lines\n{trace}"
        );
        assert!(choke <= 12, "{choke} CHOKE / UNCHOKE lines\n{trace}");
        traded |= trace.contains(" HAVE ");
    }
    assert!(
        traded,
        "the leechers did not trade pieces; the test shows nothing"
    );
}

/// A new seed greets its first leecher without a BITFIELD and shows it its
/// pieces with HAVEs (initial seeding); once every piece has reached a
/// peer, it greets a peer that speaks the fast extension (ours do) with
/// HAVE ALL, traced on both sides, and the downloads complete whether the
/// receiver knows the torrent or only its name. And EXIT on the way out is answered by the tracker's OK,
/// which the peer waits for and traces.
#[test]
fn trace_shows_have_all_from_a_seed_and_the_ok_answering_exit() {
    let size = 1024 * 1024;
    let sw = swarm_with("trace-bitfield", "b.bin", size, PIECE, &["--trace"]);
    let (tracker, tmp, data, torrent) = (&sw.tracker, &sw.tmp, &sw.data, &sw.torrent);
    let pieces = metainfo_of(torrent).info.pieces.len();
    assert_eq!(pieces, 32);
    let seeder_port = sw.seeder.port();
    let from_seeder = format!(" peer 127.0.0.1:{seeder_port} → 127.0.0.1:");

    // The first leecher: the new seed sends no BITFIELD, only HAVEs, each
    // piece once.
    let dir = tmp.sub("first");
    let g = get_ok(
        "first",
        tracker,
        torrent.to_str().unwrap(),
        &dir,
        &["--trace"],
    );
    assert_same_file(data, &dir.join("b.bin"));
    let trace = g.err.text();
    let from_seed = |l: &&str| l.contains(&from_seeder);
    assert!(
        !trace
            .lines()
            .filter(from_seed)
            .any(|l| l.contains("  BITFIELD")),
        "a new seed sent a BITFIELD\n{trace}"
    );
    let shown: Vec<&str> = trace
        .lines()
        .filter(from_seed)
        .filter_map(|l| l.split("  HAVE ").nth(1))
        .filter(|rest| rest.parse::<u32>().is_ok())
        .collect();
    let distinct: HashSet<&str> = shown.iter().copied().collect();
    assert_eq!(distinct.len(), pieces, "HAVEs from the seed\n{trace}");
    // With the fast extension, the HAVEs follow a HAVE NONE.
    assert!(
        trace
            .lines()
            .filter(from_seed)
            .any(|l| l.ends_with("  HAVE NONE")),
        "no HAVE NONE from the new seed\n{trace}"
    );
    assert_eq!(shown.len(), pieces, "a piece shown twice\n{trace}");

    // With the .torrent, the piece count is known from the start.
    let dir = tmp.sub("t");
    let g = get_ok(
        "by-torrent",
        tracker,
        torrent.to_str().unwrap(),
        &dir,
        &["--trace"],
    );
    assert_same_file(data, &dir.join("b.bin"));
    let trace = g.err.text();
    assert!(
        trace
            .lines()
            .any(|l| l.contains(&from_seeder) && l.ends_with("  HAVE ALL")),
        "no 'HAVE ALL' from the seeder\n{trace}"
    );

    // The EXIT the peer sends on the way out, then the OK with its tid.
    let exit = trace
        .lines()
        .find(|l| l.contains(" tracker ") && l.contains("  EXIT peer="))
        .unwrap_or_else(|| panic!("no EXIT line\n{trace}"));
    let tid = exit
        .rsplit("tid=")
        .next()
        .unwrap_or_else(|| panic!("no tid in {exit:?}"));
    let ok = trace
        .lines()
        .skip_while(|l| *l != exit)
        .find(|l| l.contains("  OK ") && l.ends_with(&format!(" tid={tid}")));
    assert!(ok.is_some(), "no OK answering {exit:?}\n{trace}");

    // By name: HAVE ALL arrives before the metadata.
    let dir = tmp.sub("n");
    let g = get_ok("by-name", tracker, "b.bin", &dir, &["--trace"]);
    assert_same_file(data, &dir.join("b.bin"));
    let trace = g.err.text();
    let early = "  HAVE ALL";
    assert!(
        trace
            .lines()
            .any(|l| l.contains(&from_seeder) && l.ends_with(early)),
        "no {early:?} from the seeder\n{trace}"
    );

    // The seeder's side of both connections.
    let sent = sw
        .seeder
        .err
        .text()
        .lines()
        .filter(|l| {
            l.contains(&format!(" peer 127.0.0.1:{seeder_port} → ")) && l.ends_with("  HAVE ALL")
        })
        .count();
    // One per leecher (more if one reconnected).
    assert!(sent >= 2, "{sent} HAVE ALL lines\n{}", sw.seeder.dump());
}
