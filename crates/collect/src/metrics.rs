//! Performance metrics from `metrics.k8s.io` PodMetrics, and Kubernetes quantities.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// CPU and memory use, in total and per namespace, from metrics.k8s.io/v1beta1 PodMetrics
/// objects. Usage values that are not quantities are skipped and counted in `unparsable`.
pub fn performance_metrics(pod_metrics: &[Value]) -> Value {
    #[derive(Default)]
    struct Use {
        pods: u64,
        cpu_millicores: f64,
        memory_bytes: f64,
    }
    impl Use {
        fn json(&self) -> Value {
            json!({"pods": self.pods, "cpuMillicores": millicores(self.cpu_millicores),
                   "memoryBytes": bytes(self.memory_bytes)})
        }
    }
    let (mut total, mut unparsable) = (Use::default(), 0u64);
    let mut by_namespace = BTreeMap::<&str, Use>::new();
    for pod in pod_metrics {
        let mut this = Use { pods: 1, ..Use::default() };
        for usage in pod["containers"].as_array().into_iter().flatten().map(|c| &c["usage"]) {
            for (resource, scale, sum) in
                [("cpu", 1e3, &mut this.cpu_millicores), ("memory", 1.0, &mut this.memory_bytes)]
            {
                match usage.get(resource).map(|q| q.as_str().and_then(parse_quantity)) {
                    Some(Some(v)) if v >= 0.0 => *sum += v * scale,
                    Some(_) => unparsable += 1,
                    None => {}
                }
            }
        }
        total.pods += 1;
        total.cpu_millicores += this.cpu_millicores;
        total.memory_bytes += this.memory_bytes;
        if let Some(ns) = pod.pointer("/metadata/namespace").and_then(Value::as_str) {
            let n = by_namespace.entry(ns).or_default();
            n.pods += 1;
            n.cpu_millicores += this.cpu_millicores;
            n.memory_bytes += this.memory_bytes;
        }
    }
    json!({
        "available": true,
        "podCount": total.pods,
        "cpuMillicores": millicores(total.cpu_millicores),
        "memoryBytes": bytes(total.memory_bytes),
        "unparsable": unparsable,
        "byNamespace": by_namespace.iter().map(|(ns, u)| (ns.to_string(), u.json())).collect::<serde_json::Map<_, _>>(),
    })
}

/// Whole millicores (sums of nanocores are not worth their digits).
fn millicores(v: f64) -> u64 {
    v.round() as u64
}

fn bytes(v: f64) -> u64 {
    v.round() as u64
}

/// What the collector records when the cluster does not serve metrics.k8s.io.
pub fn performance_unavailable(reason: &'static str) -> Value {
    json!({"available": false, "reason": reason})
}

/// A Kubernetes quantity in base units ("250m" → 0.25, "1Ki" → 1024, "1e3" → 1000); None when
/// it is not one.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let (number, suffix) = q.split_at(q.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(q.len()));
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            if exponent.is_empty() || !exponent.trim_start_matches(['+', '-']).bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(exponent.parse::<i32>().ok()?)
        }
    };
    Some(n * factor).filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_parsed() {
        let cases = [
            ("12m", 0.012),
            ("1", 1.0),
            ("250000n", 0.00025),
            ("1.5", 1.5),
            (".5", 0.5),
            ("100u", 0.0001),
            ("64Mi", 67108864.0),
            ("123456Ki", 126418944.0),
            ("1G", 1e9),
            ("1000", 1000.0),
            ("2k", 2000.0),
            ("1Ei", 1152921504606846976.0),
            ("1E", 1e18),
            ("1e3", 1000.0),
            ("1E3", 1000.0),
            ("5e-3", 0.005),
            ("1e+2", 100.0),
        ];
        for (q, want) in cases {
            let got = parse_quantity(q).unwrap_or(f64::NAN);
            assert!((got - want).abs() <= want.abs() * 1e-12, "{q}: {got} != {want}");
        }
        for bad in ["", "m", "abc", "1.2.3", "1Q", "1e", "1e+", "1KiB", "-1", "1 Mi", "inf", "NaN", "1e99999"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn pod_metrics_are_summed_per_namespace() {
        let pod = |ns: &str, cpu: &str, mem: &str| {
            json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                   "metadata": {"name": "p", "namespace": ns}, "timestamp": "2026-01-01T00:00:00Z", "window": "30s",
                   "containers": [{"name": "a", "usage": {"cpu": cpu, "memory": mem}},
                                  {"name": "b", "usage": {"cpu": "250000n", "memory": "1000"}}]})
        };
        let out = performance_metrics(&[pod("shop", "12m", "64Mi"), pod("shop", "1", "1Ki"), pod("ops", "lots", "x")]);
        assert_eq!(
            out,
            json!({"available": true, "podCount": 3, "cpuMillicores": 1013, "memoryBytes": 67112888,
                   "unparsable": 2,
                   "byNamespace": {
                       "shop": {"pods": 2, "cpuMillicores": 1013, "memoryBytes": 67111888},
                       "ops": {"pods": 1, "cpuMillicores": 0, "memoryBytes": 1000}}})
        );
        assert_eq!(performance_unavailable("not served"), json!({"available": false, "reason": "not served"}));
        assert_eq!(performance_metrics(&[])["podCount"], 0);
    }
}
