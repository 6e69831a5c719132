use super::*;
use std::time::Duration;

fn cfg() -> VivaldiConfig {
    VivaldiConfig::default()
}

fn at(v: &[f64], height: f64) -> Coordinate {
    let mut c = Coordinate::origin(&cfg());
    c.vec[..v.len()].copy_from_slice(v);
    c.height = height;
    c
}

#[test]
fn defaults_are_serfs() {
    let c = cfg();
    assert_eq!(c.dimensionality, 8);
    assert_eq!(c.error_max, 1.5);
    assert_eq!((c.ce, c.cc), (0.25, 0.25));
    assert_eq!(c.adjustment_window, 20);
    assert_eq!(c.height_min, 10.0e-6);
    assert_eq!(c.latency_filter_size, 3);
    assert_eq!(c.gravity_rho, 150.0);
}

#[test]
fn distance_is_euclidean_plus_heights_plus_adjustments() {
    let a = at(&[0.0, 0.0], 0.002);
    let b = at(&[0.03, 0.04], 0.003);
    let d = a.distance_secs(&b).unwrap();
    assert!((d - 0.055).abs() < 1e-12, "{d}");
    let mut a2 = a.clone();
    a2.adjustment = 0.01;
    assert!((a2.distance_secs(&b).unwrap() - 0.065).abs() < 1e-12);
    // A negative adjustment that would make the estimate non-positive is ignored.
    a2.adjustment = -1.0;
    assert!((a2.distance_secs(&b).unwrap() - 0.055).abs() < 1e-12);
    assert_eq!(a.distance_to(&b), Some(Duration::from_micros(55_000)));
    let mut short = a.clone();
    short.vec.pop();
    assert_eq!(short.distance_secs(&b), None);
}

#[test]
fn validity() {
    assert!(Coordinate::origin(&cfg()).is_valid());
    for poison in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut c = Coordinate::origin(&cfg());
        c.vec[3] = poison;
        assert!(!c.is_valid());
        let mut c = Coordinate::origin(&cfg());
        c.height = poison;
        assert_eq!(c.check(&cfg()), Err(UpdateError::NotFinite));
    }
    let mut c = Coordinate::origin(&cfg());
    c.vec.push(0.0);
    assert_eq!(c.check(&cfg()), Err(UpdateError::Dimensions { got: 9, want: 8 }));
}

#[test]
fn bad_samples_are_refused_and_counted() {
    let mut client = Client::new(cfg(), 1);
    let before = client.coordinate().clone();
    let mut nan = Coordinate::origin(&cfg());
    nan.error = f64::NAN;
    assert!(client.update("peer", &nan, Duration::from_millis(10)).is_err());
    let ok = Coordinate::origin(&cfg());
    assert_eq!(
        client.update("peer", &ok, Duration::from_secs(11)),
        Err(UpdateError::BadRtt(Duration::from_secs(11)))
    );
    assert_eq!(client.coordinate(), &before);
    assert_eq!(client.stats().rejected, 2);
    assert_eq!(client.stats().updates, 0);
}

#[test]
fn a_sample_pushes_apart_nodes_that_are_too_close() {
    let mut client = Client::new(cfg(), 7);
    let other = Coordinate::origin(&cfg());
    let rtt = Duration::from_millis(100);
    let c = client.update("peer", &other, rtt).unwrap().clone();
    let d = c.distance_secs(&other).unwrap();
    assert!(d > 0.01 && d < 0.1, "moved to an estimate of {d}s");
    assert!(c.height >= cfg().height_min);
    // Equal errors: weight 1/2, so the error moves a quarter of the way toward
    // the (large) wrongness and is capped at the maximum.
    assert!(c.error <= cfg().error_max);
    // Repeated samples converge on the measured RTT.
    for _ in 0..200 {
        client.update("peer", &other, rtt).unwrap();
    }
    let est = client.distance_to(&other).unwrap();
    assert!(est > Duration::from_millis(90) && est < Duration::from_millis(110), "{est:?}");
}

#[test]
fn a_sample_pulls_together_nodes_that_are_too_far() {
    let mut client = Client::new(cfg(), 3);
    let mut start = at(&[0.5], cfg().height_min);
    start.error = 1.0;
    client.set_coordinate(start.clone()).unwrap();
    let other = Coordinate::origin(&cfg());
    let before = start.distance_secs(&other).unwrap();
    let after =
        client.update("peer", &other, Duration::from_millis(10)).unwrap().distance_secs(&other).unwrap();
    assert!(after < before, "{after} >= {before}");
}

#[test]
fn latency_filter_takes_the_median_of_three() {
    let mut client = Client::new(cfg(), 5);
    assert_eq!(client.latency_filter("a", 0.2), 0.2);
    assert_eq!(client.latency_filter("a", 0.4), 0.4);
    assert_eq!(client.latency_filter("a", 0.1), 0.2);
    assert_eq!(client.latency_filter("a", 0.3), 0.3);
    assert_eq!(client.latency_filter("a", 5.0), 0.3); // an outlier does not win
    assert_eq!(client.latency_filter("b", 0.9), 0.9); // per peer
    client.forget("a");
    assert_eq!(client.latency_filter("a", 0.7), 0.7);
}

#[test]
fn gravity_pulls_toward_the_origin() {
    let mut client = Client::new(VivaldiConfig { gravity_rho: 20.0, ..cfg() }, 9);
    client.set_coordinate(at(&[10.0], cfg().height_min)).unwrap();
    client.update_gravity();
    let x = client.coordinate().vec[0];
    // Force about -(10/20)^2 = -0.25 s toward the origin (heights add a little).
    assert!((x - 9.75).abs() < 1e-5, "{x}");
}

#[test]
fn adjustment_is_half_the_mean_residual() {
    let mut client = Client::new(VivaldiConfig { adjustment_window: 4, ..cfg() }, 11);
    let other = Coordinate::origin(&cfg());
    // Raw distance between two origins is twice the minimal height.
    let raw = 2.0 * cfg().height_min;
    client.update_adjustment(&other, 0.1);
    let expect = (0.1 - raw) / 8.0;
    assert!((client.coordinate().adjustment - expect).abs() < 1e-12);
}

#[test]
fn median_picks_the_middle() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(3.0));
}

#[test]
fn coordinate_json_has_consuls_field_names() {
    let c = at(&[0.5], 0.1);
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["Vec"].as_array().unwrap().len(), 8);
    assert_eq!(j["Height"], 0.1);
    assert_eq!(j["Error"], 1.5);
    assert_eq!(j["Adjustment"], 0.0);
    let back: Coordinate = serde_json::from_value(j).unwrap();
    assert_eq!(back, c);
}
