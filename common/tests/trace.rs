use std::time::Duration;

use minitorrent_common::trace::hms_millis;

#[test]
fn the_epoch_is_midnight() {
    assert_eq!(hms_millis(Duration::ZERO), "00:00:00.000");
}

#[test]
fn hours_minutes_seconds_and_millis_are_zero_padded() {
    let t = Duration::from_secs(6 * 3600 + 19) + Duration::from_micros(825_999);
    assert_eq!(hms_millis(t), "06:00:19.825");
}

#[test]
fn the_date_is_dropped() {
    // 2024-01-01T23:59:59.999Z
    let t = Duration::from_millis(1_704_153_599_999);
    assert_eq!(hms_millis(t), "23:59:59.999");
    assert_eq!(hms_millis(t + Duration::from_millis(1)), "00:00:00.000");
}
