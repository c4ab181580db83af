//! Error recovery for the spec's shape. serde stops at the first error of a document, so
//! the parser deserializes, drops the entry the error points at (an unknown key, a value of
//! the wrong type or out of range, a table that lacks a required key) and tries again, until
//! what is left deserializes or nothing more can be dropped. Every error met on the way is
//! reported; what was dropped is kept, so that later checks can tell a consequence of a
//! dropped entry from a mistake of its own.

use std::fmt;
use std::ops::Range;

use toml_edit::{Item, Table, TableLike, Value};

/// One step of the path to an entry of the document: a key, or an index into a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// An entry the parser left out because it was malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedEntry {
    /// Where the entry was, from the document root.
    pub path: Vec<Segment>,
    /// Span of the table the entry was a key of (`None` for the root table and list
    /// elements): a "missing key" error about that table carries the same span.
    table_span: Option<Range<usize>>,
    /// For an unknown key, the known key it most likely stands for (see
    /// [`DroppedEntry::explains_missing`]).
    pub suggestion: Option<String>,
}

impl DroppedEntry {
    fn key(&self) -> Option<&str> {
        match self.path.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// Whether this drop is why `table_span`'s table now lacks `key`: the key itself was
    /// dropped (its value was malformed), or an unknown key that stands for it was (its
    /// did-you-mean already tells the user what to write).
    pub fn explains_missing(&self, key: &str, table_span: &Option<Range<usize>>) -> bool {
        self.table_span == *table_span && (self.key() == Some(key) || self.suggestion.as_deref() == Some(key))
    }

    /// The path as the spec writes it: `hosts.web2.roles[1]`.
    pub fn dotted(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DroppedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.path.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Everything the parser left out of a spec, so the resolver can skip the checks whose
/// answer depends on it (a reference to a dropped host is not a mistake of its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dropped(pub Vec<DroppedEntry>);

impl Dropped {
    /// Whether anything at or below one of the dotted `paths` was dropped.
    pub fn any_under(&self, paths: &[&str]) -> bool {
        self.0.iter().any(|entry| {
            let dotted = entry.dotted();
            paths.iter().any(|path| {
                dotted == *path
                    || dotted.strip_prefix(path).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
        })
    }

    /// Whether the set of hosts, or of the roles they run, is not what the user wrote: a
    /// host table, a roles list or a role of one, anything of a group, or a whole role
    /// section was dropped. The
    /// checks that count a tier's members or look names up among the hosts cannot be
    /// trusted then.
    pub fn hosts_incomplete(&self) -> bool {
        self.0.iter().any(|entry| match entry.path.as_slice() {
            // Any drop in a group can change its hosts: their number, names or roles.
            [Segment::Key(top), ..] if top == "groups" => true,
            [Segment::Key(top)] => ["hosts", "lb", "web", "app", "db"].contains(&top.as_str()),
            [Segment::Key(top), Segment::Key(_)] => top == "hosts",
            [Segment::Key(top), Segment::Key(_), Segment::Key(key), ..] => top == "hosts" && key == "roles",
            _ => false,
        })
    }
}

/// Removes from `root` the innermost entry the error span `at` points at: the key written
/// there, or the value (table, list element, key's value) whose span contains it.
pub fn drop_entry(root: &mut Table, at: &Range<usize>) -> Option<DroppedEntry> {
    let mut path = Vec::new();
    let span = root.span();
    drop_in_table(root, span, at, &mut path)
}

fn contains(span: Option<Range<usize>>, at: &Range<usize>) -> bool {
    span.is_some_and(|span| span.start <= at.start && at.end <= span.end)
}

/// `table_span` is passed in because `TableLike` has no span accessor (its two
/// implementors each have one).
fn drop_in_table(
    table: &mut dyn TableLike,
    table_span: Option<Range<usize>>,
    at: &Range<usize>,
    path: &mut Vec<Segment>,
) -> Option<DroppedEntry> {
    let keys: Vec<String> = table.iter().map(|(key, _)| key.to_string()).collect();
    for key in keys {
        path.push(Segment::Key(key.clone()));
        let key_matches = table.key(&key).is_some_and(|k| k.span().as_ref() == Some(at));
        let item = table.get_mut(&key).expect("key listed above");
        let deeper = if key_matches { None } else { drop_in_item(item, at, path) };
        if deeper.is_some() {
            return deeper;
        }
        if key_matches || contains(item.span(), at) {
            table.remove(&key);
            return Some(DroppedEntry { path: path.clone(), table_span: table_span.clone(), suggestion: None });
        }
        path.pop();
    }
    None
}

fn drop_in_item(item: &mut Item, at: &Range<usize>, path: &mut Vec<Segment>) -> Option<DroppedEntry> {
    match item {
        Item::Table(table) => {
            let span = table.span();
            drop_in_table(table, span, at, path)
        }
        Item::Value(value) => drop_in_value(value, at, path),
        Item::ArrayOfTables(tables) => {
            for index in 0..tables.len() {
                path.push(Segment::Index(index));
                let table = tables.get_mut(index).expect("index in range");
                let span = table.span();
                let deeper = drop_in_table(table, span, at, path);
                if deeper.is_some() {
                    return deeper;
                }
                if contains(table.span(), at) {
                    tables.remove(index);
                    return Some(DroppedEntry { path: path.clone(), table_span: None, suggestion: None });
                }
                path.pop();
            }
            None
        }
        Item::None => None,
    }
}

fn drop_in_value(value: &mut Value, at: &Range<usize>, path: &mut Vec<Segment>) -> Option<DroppedEntry> {
    match value {
        Value::InlineTable(table) => {
            let span = table.span();
            drop_in_table(table, span, at, path)
        }
        Value::Array(array) => {
            for index in 0..array.len() {
                path.push(Segment::Index(index));
                let element = array.get_mut(index).expect("index in range");
                let deeper = drop_in_value(element, at, path);
                if deeper.is_some() {
                    return deeper;
                }
                if contains(element.span(), at) {
                    array.remove(index);
                    return Some(DroppedEntry { path: path.clone(), table_span: None, suggestion: None });
                }
                path.pop();
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropped(text: &str, at: &str) -> (Option<String>, String) {
        let document = toml_edit::ImDocument::parse(text.to_string()).unwrap();
        let mut root = document.as_table().clone();
        let start = text.find(at).unwrap();
        let entry = drop_entry(&mut root, &(start..start + at.len()));
        let left = toml_edit::DocumentMut::from(root).to_string();
        (entry.map(|e| e.dotted()), left)
    }

    #[test]
    fn an_unknown_key_is_dropped_with_its_value() {
        let (path, left) = dropped("[a]\nx = 1\nadress = 2\n", "adress");
        assert_eq!(path.as_deref(), Some("a.adress"));
        assert!(!left.contains("adress") && left.contains("x = 1"), "{left}");
    }

    #[test]
    fn a_bad_list_element_is_dropped_alone() {
        let (path, left) = dropped("[h.w]\nroles = [\"web\", \"databse\"]\n", "\"databse\"");
        assert_eq!(path.as_deref(), Some("h.w.roles[1]"));
        assert!(left.contains("\"web\"") && !left.contains("databse"), "{left}");
    }

    #[test]
    fn a_table_is_dropped_when_the_error_points_at_its_header() {
        let (path, left) = dropped("[h.a]\nx = 1\n[h.b]\ny = 2\n", "[h.b]");
        assert_eq!(path.as_deref(), Some("h.b"));
        assert!(left.contains("x = 1") && !left.contains("y = 2"), "{left}");
    }

    #[test]
    fn a_key_in_an_inline_table_of_a_list_is_dropped() {
        let (path, _) = dropped("[d]\nusers = [{ name = \"a\", databse = \"b\" }]\n", "databse");
        assert_eq!(path.as_deref(), Some("d.users[0].databse"));
    }

    #[test]
    fn nothing_is_dropped_where_no_entry_is() {
        assert_eq!(dropped("[a]\nx = 1\n", "[a]").0.as_deref(), Some("a"));
        assert_eq!(dropped("# only\n[a]\nx = 1\n", "# only").0, None);
    }

    #[test]
    fn hosts_are_incomplete_when_a_host_or_a_role_was_dropped() {
        let entry = |path: &[&str]| DroppedEntry {
            path: path.iter().map(|s| Segment::Key(s.to_string())).collect(),
            table_span: None,
            suggestion: None,
        };
        assert!(Dropped(vec![entry(&["hosts", "web1"])]).hosts_incomplete());
        assert!(Dropped(vec![entry(&["hosts", "web1", "roles"])]).hosts_incomplete());
        assert!(Dropped(vec![entry(&["lb"])]).hosts_incomplete());
        assert!(!Dropped(vec![entry(&["hosts", "web1", "adress"])]).hosts_incomplete());
        assert!(Dropped(vec![entry(&["db", "databases"])]).any_under(&["db.databases"]));
        assert!(!Dropped(vec![entry(&["db", "databases_x"])]).any_under(&["db.databases"]));
    }
}
