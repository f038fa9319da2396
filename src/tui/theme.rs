//! Themes by meaning (base, muted, accent, warn, error, selection, priority levels,
//! confidence bands…) in TOML under `themes/`, with a parent theme (`inherits`), user themes
//! from the config dir, and the colour mode (`auto|16|256|truecolor|none`, NO_COLOR).
use std::collections::BTreeMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};

const BUILTIN: [(&str, &str); 4] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

/// How many colours the terminal gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorMode {
    None,
    Ansi16,
    Ansi256,
    TrueColor,
}

impl ColorMode {
    /// `auto` looks at NO_COLOR, COLORTERM and TERM (passed in, so tests stay pure).
    pub fn resolve(
        setting: &str,
        no_color: bool,
        colorterm: Option<&str>,
        term: Option<&str>,
    ) -> Result<ColorMode, String> {
        if no_color {
            return Ok(ColorMode::None);
        }
        match setting.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "no" => Ok(ColorMode::None),
            "16" => Ok(ColorMode::Ansi16),
            "256" => Ok(ColorMode::Ansi256),
            "truecolor" | "24bit" => Ok(ColorMode::TrueColor),
            "auto" | "" => Ok(
                if matches!(colorterm, Some(c) if c.contains("truecolor") || c.contains("24bit")) {
                    ColorMode::TrueColor
                } else if matches!(term, Some(t) if t.contains("256")) {
                    ColorMode::Ansi256
                } else if term == Some("dumb") {
                    ColorMode::None
                } else {
                    ColorMode::Ansi16
                },
            ),
            other => Err(format!(
                "'{other}' is not a colour mode; use auto, 16, 256, truecolor or none"
            )),
        }
    }
}

/// The resolved styles.
#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    pub mode: ColorMode,
    pub base: Style,
    pub muted: Style,
    pub accent: Style,
    pub title: Style,
    pub border: Style,
    pub border_focus: Style,
    pub selection: Style,
    pub ok: Style,
    pub warn: Style,
    pub error: Style,
    pub badge: Style,
    pub badge_alert: Style,
    pub edited: Style,
    pub key: Style,
    pub status: Style,
    /// By rank in the policy's priorities (most urgent first); the last repeats.
    pub priority: Vec<Style>,
    pub conf_low: Style,
    pub conf_mid: Style,
    pub conf_high: Style,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    inherits: Option<String>,
    #[serde(default)]
    styles: BTreeMap<String, String>,
}

const KEYS: [&str; 23] = [
    "base",
    "muted",
    "accent",
    "title",
    "border",
    "border_focus",
    "selection",
    "ok",
    "warn",
    "error",
    "badge",
    "badge_alert",
    "edited",
    "key",
    "status",
    "priority_0",
    "priority_1",
    "priority_2",
    "priority_3",
    "conf_low",
    "conf_mid",
    "conf_high",
    "priority_4",
];

fn parse_color(s: &str) -> Result<Color, String> {
    let c = match s.to_ascii_lowercase().replace('_', "-").as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "dark-gray" | "dark-grey" | "bright-black" => Color::DarkGray,
        "bright-red" => Color::LightRed,
        "bright-green" => Color::LightGreen,
        "bright-yellow" => Color::LightYellow,
        "bright-blue" => Color::LightBlue,
        "bright-magenta" => Color::LightMagenta,
        "bright-cyan" => Color::LightCyan,
        "white" | "bright-white" => {
            if s.contains("bright") {
                Color::White
            } else {
                Color::Gray
            }
        }
        hex if hex.starts_with('#') && hex.len() == 7 => {
            let v = u32::from_str_radix(&hex[1..], 16).map_err(|_| format!("bad colour '{s}'"))?;
            Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8)
        }
        n => Color::Indexed(n.parse::<u8>().map_err(|_| {
            format!("'{s}' is not a colour; use an ANSI name (red, bright-blue, dark-gray), 0-255 or #rrggbb")
        })?),
    };
    Ok(c)
}

/// Parses `"black on cyan bold"`.
pub fn parse_style(spec: &str) -> Result<Style, String> {
    let mut style = Style::default();
    let mut on = false;
    let mut fg_set = false;
    for word in spec.split_whitespace() {
        let m = match word.to_ascii_lowercase().as_str() {
            "bold" => Some(Modifier::BOLD),
            "dim" => Some(Modifier::DIM),
            "italic" => Some(Modifier::ITALIC),
            "underline" | "underlined" => Some(Modifier::UNDERLINED),
            "reverse" | "reversed" => Some(Modifier::REVERSED),
            "on" => {
                on = true;
                continue;
            }
            _ => None,
        };
        if let Some(m) = m {
            style = style.add_modifier(m);
            continue;
        }
        let c = parse_color(word)?;
        if on {
            style = style.bg(c);
            on = false;
        } else if !fg_set {
            style = style.fg(c);
            fg_set = true;
        } else {
            return Err(format!(
                "'{spec}': two foreground colours; write 'fg on bg'"
            ));
        }
    }
    Ok(style)
}

fn to_16(c: Color) -> Color {
    match c {
        Color::Rgb(r, g, b) => {
            let bright = u16::from(r) + u16::from(g) + u16::from(b) > 382;
            let (r, g, b) = (r > 127, g > 127, b > 127);
            match (r, g, b, bright) {
                (false, false, false, false) => Color::Black,
                (false, false, false, true) => Color::DarkGray,
                (true, false, false, _) => Color::Red,
                (false, true, false, _) => Color::Green,
                (true, true, false, _) => Color::Yellow,
                (false, false, true, _) => Color::Blue,
                (true, false, true, _) => Color::Magenta,
                (false, true, true, _) => Color::Cyan,
                (true, true, true, _) => Color::White,
            }
        }
        Color::Indexed(i) if i < 16 => [
            Color::Black,
            Color::Red,
            Color::Green,
            Color::Yellow,
            Color::Blue,
            Color::Magenta,
            Color::Cyan,
            Color::Gray,
            Color::DarkGray,
            Color::LightRed,
            Color::LightGreen,
            Color::LightYellow,
            Color::LightBlue,
            Color::LightMagenta,
            Color::LightCyan,
            Color::White,
        ][usize::from(i)],
        Color::Indexed(i) => {
            // Cube or grey ramp → approximate RGB, then to 16.
            let (r, g, b) = if i >= 232 {
                let v = 8 + (i - 232) * 10;
                (v, v, v)
            } else {
                let i = i - 16;
                let s = |x: u8| if x == 0 { 0 } else { 55 + x * 40 };
                (s(i / 36), s((i / 6) % 6), s(i % 6))
            };
            to_16(Color::Rgb(r, g, b))
        }
        other => other,
    }
}

fn to_256(c: Color) -> Color {
    match c {
        Color::Rgb(r, g, b) => {
            let q = |x: u8| ((u16::from(x) * 5 + 127) / 255) as u8;
            Color::Indexed(16 + 36 * q(r) + 6 * q(g) + q(b))
        }
        other => other,
    }
}

fn adapt(style: Style, mode: ColorMode) -> Style {
    let map = |c: Option<Color>| -> Option<Color> {
        c.and_then(|c| match mode {
            ColorMode::None => None,
            ColorMode::Ansi16 => Some(to_16(c)),
            ColorMode::Ansi256 => Some(to_256(c)),
            ColorMode::TrueColor => Some(c),
        })
    };
    let mut s = style;
    s.fg = map(style.fg);
    s.bg = map(style.bg);
    s.underline_color = None;
    s
}

/// A theme's styles with its parents' underneath, or an error naming the theme and key.
fn load_map(
    name: &str,
    user_dir: Option<&Path>,
    depth: usize,
) -> Result<BTreeMap<String, String>, String> {
    if depth > 8 {
        return Err(format!("theme '{name}': inherits in a loop"));
    }
    let (text, origin) = match user_dir
        .map(|d| d.join(format!("{name}.toml")))
        .filter(|p| p.is_file())
    {
        Some(p) => (
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?,
            p.display().to_string(),
        ),
        None => match BUILTIN.iter().find(|(n, _)| *n == name) {
            Some((_, t)) => (t.to_string(), format!("built-in theme '{name}'")),
            None => {
                return Err(format!(
                    "unknown theme '{name}'; built-in: dark, light, high-contrast, mono{}",
                    user_dir
                        .map(|d| format!(", or a file {}/{name}.toml", d.display()))
                        .unwrap_or_default()
                ));
            }
        },
    };
    let file: ThemeFile = toml::from_str(&text).map_err(|e| format!("{origin}: {e}"))?;
    let mut map = match file.inherits.as_deref() {
        Some(parent) if parent != name => load_map(parent, user_dir, depth + 1)?,
        Some(_) => {
            // A user theme may shadow a built-in of the same name and inherit from it.
            let builtin = BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| format!("{origin}: a theme cannot inherit from itself"))?;
            let f: ThemeFile = toml::from_str(builtin.1).map_err(|e| e.to_string())?;
            f.styles
        }
        None => BTreeMap::new(),
    };
    for (k, v) in file.styles {
        if !KEYS.contains(&k.as_str()) {
            return Err(format!(
                "{origin}: unknown style '{k}'; styles: {}",
                KEYS.join(", ")
            ));
        }
        parse_style(&v).map_err(|e| format!("{origin}: styles.{k}: {e}"))?;
        map.insert(k, v);
    }
    Ok(map)
}

impl Theme {
    /// Loads a theme by name (user dir first, then built-ins) for a colour mode.
    pub fn load(name: &str, user_dir: Option<&Path>, mode: ColorMode) -> Result<Theme, String> {
        // Every theme sits on dark, so a partial user theme is complete.
        let mut map = if name == "mono" {
            BTreeMap::new()
        } else {
            load_map("dark", None, 0)?
        };
        map.extend(load_map(name, user_dir, 0)?);
        let get = |k: &str| -> Style {
            map.get(k)
                .and_then(|v| parse_style(v).ok())
                .map(|s| adapt(s, mode))
                .unwrap_or_default()
        };
        let mut selection = get("selection");
        if mode == ColorMode::None {
            // No colours: the selection must still be visible.
            selection = selection.add_modifier(Modifier::REVERSED | Modifier::BOLD);
        }
        let mut priority: Vec<Style> = (0..5)
            .map(|i| format!("priority_{i}"))
            .filter(|k| map.contains_key(k))
            .map(|k| get(&k))
            .collect();
        if priority.is_empty() {
            priority.push(Style::default());
        }
        Ok(Theme {
            name: name.to_string(),
            mode,
            base: get("base"),
            muted: get("muted"),
            accent: get("accent"),
            title: get("title"),
            border: get("border"),
            border_focus: get("border_focus"),
            selection,
            ok: get("ok"),
            warn: get("warn"),
            error: get("error"),
            badge: get("badge"),
            badge_alert: get("badge_alert"),
            edited: get("edited"),
            key: get("key"),
            status: get("status"),
            priority,
            conf_low: get("conf_low"),
            conf_mid: get("conf_mid"),
            conf_high: get("conf_high"),
        })
    }

    /// The built-in dark theme in 16 colours (tests, fallbacks).
    pub fn fallback() -> Theme {
        Theme::load("dark", None, ColorMode::Ansi16).unwrap_or_else(|_| Theme {
            name: "none".into(),
            mode: ColorMode::None,
            base: Style::default(),
            muted: Style::default(),
            accent: Style::default(),
            title: Style::default(),
            border: Style::default(),
            border_focus: Style::default(),
            selection: Style::default().add_modifier(Modifier::REVERSED),
            ok: Style::default(),
            warn: Style::default(),
            error: Style::default(),
            badge: Style::default(),
            badge_alert: Style::default(),
            edited: Style::default(),
            key: Style::default(),
            status: Style::default(),
            priority: vec![Style::default()],
            conf_low: Style::default(),
            conf_mid: Style::default(),
            conf_high: Style::default(),
        })
    }

    pub fn priority(&self, rank: usize) -> Style {
        self.priority
            .get(rank)
            .or(self.priority.last())
            .copied()
            .unwrap_or_default()
    }
}

/// Names of the built-in themes.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_loads_in_every_mode() {
        for name in builtin_names() {
            for mode in [
                ColorMode::None,
                ColorMode::Ansi16,
                ColorMode::Ansi256,
                ColorMode::TrueColor,
            ] {
                let t = Theme::load(name, None, mode).unwrap();
                assert!(t.priority.len() >= 4, "{name}");
            }
        }
    }

    #[test]
    fn no_color_has_no_colours_but_a_visible_selection() {
        let t = Theme::load("dark", None, ColorMode::None).unwrap();
        for s in [t.base, t.selection, t.error, t.priority(0), t.conf_low] {
            assert_eq!((s.fg, s.bg), (None, None));
        }
        assert!(t.selection.add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn styles_parse() {
        let s = parse_style("black on cyan bold").unwrap();
        assert_eq!(
            s,
            Style::default()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        );
        assert!(parse_style("red blue").is_err());
        assert!(parse_style("mauve").is_err());
        assert_eq!(to_16(Color::Rgb(250, 10, 10)), Color::Red);
        assert_eq!(to_256(Color::Rgb(255, 0, 0)), Color::Indexed(196));
    }

    #[test]
    fn user_themes_inherit_and_report_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ocean.toml"),
            "inherits = \"light\"\n[styles]\naccent = \"#0088ff\"\n",
        )
        .unwrap();
        let t = Theme::load("ocean", Some(dir.path()), ColorMode::TrueColor).unwrap();
        assert_eq!(t.accent.fg, Some(Color::Rgb(0, 0x88, 0xff)));
        assert_eq!(t.border_focus.fg, Some(Color::Blue), "from light");
        std::fs::write(dir.path().join("bad.toml"), "[styles]\nacent = \"red\"\n").unwrap();
        let e = Theme::load("bad", Some(dir.path()), ColorMode::Ansi16).unwrap_err();
        assert!(e.contains("unknown style 'acent'"), "{e}");
        assert!(Theme::load("nope", None, ColorMode::Ansi16).is_err());
        assert_eq!(
            ColorMode::resolve("auto", true, None, None),
            Ok(ColorMode::None)
        );
        assert_eq!(
            ColorMode::resolve("auto", false, Some("truecolor"), None),
            Ok(ColorMode::TrueColor)
        );
        assert!(ColorMode::resolve("lots", false, None, None).is_err());
    }
}
