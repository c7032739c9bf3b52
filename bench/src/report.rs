//! Results: one table per section and database (figure, target, ratio to
//! the limit measured in the same run, met or not), and the same as JSON.

use serde_json::{Value, json};

/// One figure of a section.
pub struct Row {
    pub figure: String,
    pub value: f64,
    pub unit: &'static str,
    /// The target in words ("≥ 2,000/s"), or "" when there is none.
    pub target: String,
    /// The value divided by a limit, and what limit ("× verify/s").
    pub ratio: Option<(f64, &'static str)>,
    pub met: Option<bool>,
}

impl Row {
    pub fn info(figure: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            figure: figure.into(),
            value,
            unit,
            target: String::new(),
            ratio: None,
            met: None,
        }
    }

    pub fn target(mut self, target: impl Into<String>, met: bool) -> Row {
        self.target = target.into();
        self.met = Some(met);
        self
    }

    pub fn ratio(mut self, ratio: f64, of: &'static str) -> Row {
        self.ratio = Some((ratio, of));
        self
    }
}

/// A section's results on one database.
pub struct Section {
    pub title: String,
    pub db: String,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn print(s: &Section) {
    println!("\n== {} [{}] ==", s.title, s.db);
    println!(
        "{:<44} {:>14} {:<26} {:<22}",
        "figure", "value", "target", "vs limit"
    );
    for r in &s.rows {
        let value = format!("{} {}", num(r.value), r.unit);
        let ratio = r
            .ratio
            .map(|(x, of)| format!("{} {of}", num(x)))
            .unwrap_or_default();
        let met = match r.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<44} {:>14} {:<26} {:<22} {met}",
            r.figure, value, r.target, ratio
        );
    }
    for n in &s.notes {
        println!("  note: {n}");
    }
}

pub fn to_json(s: &Section) -> Value {
    let rows: Vec<Value> = s
        .rows
        .iter()
        .map(|r| {
            json!({
                "figure": r.figure,
                "value": r.value,
                "unit": r.unit,
                "target": r.target,
                "ratio": r.ratio.map(|(x, _)| x),
                "ratio_of": r.ratio.map(|(_, of)| of),
                "met": r.met,
            })
        })
        .collect();
    json!({"section": s.title, "db": s.db, "rows": rows, "notes": s.notes})
}
