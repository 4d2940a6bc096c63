//! Admin output: exactly one JSON object on stdout with `--json`, readable lines otherwise.

use serde::Serialize;

pub fn print<T: Serialize>(json: bool, value: &T) {
    let v = serde_json::to_value(value).expect("output is serialisable");
    if json {
        println!("{v}");
    } else {
        print_human(&v, 0);
    }
}

fn print_human(v: &serde_json::Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                        println!("{pad}{k}:");
                        print_human(v, indent + 2);
                    }
                    serde_json::Value::String(s) => println!("{pad}{k}: {s}"),
                    other => println!("{pad}{k}: {other}"),
                }
            }
        }
        serde_json::Value::Array(items) if items.is_empty() => println!("{pad}(none)"),
        serde_json::Value::Array(items) => {
            for item in items {
                println!("{pad}-");
                print_human(item, indent + 2);
            }
        }
        other => println!("{pad}{other}"),
    }
}
