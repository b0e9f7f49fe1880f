"""The one wrapping module of the terminal viewers: widths, word-aware and CJK line breaking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_kit.face.text_wrap import (
    NO_LINE_END,
    NO_LINE_START,
    display_width,
    labelled,
    pad,
    truncate,
    wrap,
    wrap_measured,
)

# Real messages and fixes of the catalogs (evaluate.vpn, evaluate.audio, evaluate.network),
# each long enough to wrap at 80 columns behind a hanging indent.
ENGLISH = ("Start your company VPN client and sign in; if it says connected, disconnect and "
           "connect again. Unplug and replug the USB headset, close other programs that use "
           "the microphone, and run the check again: 45 ms jitter, 23405 MB of 24105 MB "
           "memory available, calls would use Jabra Evolve2 40 (USB headset).")
SWEDISH = ("Starta företagets VPN-klient och logga in; om den säger ansluten, koppla från och "
           "anslut igen. Koppla ur och sätt i USB-headsetet igen, stäng andra program som "
           "använder mikrofonen och kör kontrollen igen: 45 ms fördröjningsvariation, "
           "återställningsförfarandet tar ungefär 12 minuter på datorn.")
JAPANESE = ("会社のVPNソフトを起動してサインインしてください。「接続済み」と表示されている場合は、"
            "一度切断してから再接続してください。USBヘッドセットを抜いて差し直し、マイクを使って"
            "いる他のプログラムを閉じてから、もう一度チェックしてください。雑音は5秒間で3回、"
            "パケットは1000個中12個が失われました（往復）。遅延は45 ミリ秒です。")
KOREAN = ("회사 VPN 클라이언트를 시작하고 로그인하세요. 연결됨으로 표시되면 연결을 끊었다가 다시 "
          "연결하세요. USB 헤드셋을 뽑았다가 다시 꽂고, 마이크를 사용하는 다른 프로그램을 닫은 "
          "다음 검사를 다시 실행하세요. 패킷 1000개 중 12개가 손실되었습니다(왕복). 5초 동안 "
          "잡음이 3번 있었습니다.")
COUNTERS = "個回秒分台件％"


def words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("text", [ENGLISH, SWEDISH], ids=["en", "sv"])
def test_latin_text_breaks_only_between_words(text: str, width: int) -> None:
    lines = wrap(text, width, first="  ✘ ", rest="    ")
    assert len(lines) >= 2
    assert all(display_width(line) <= width for line in lines)
    assert lines[0].startswith("  ✘ ") and all(line.startswith("    ") for line in lines[1:])
    # no word split: the words of the lines are the words of the text, in order
    assert [w for line in lines for w in words(line)] == ["✘", *words(text)]
    # a number keeps its unit ("45 ms", "12 minuter"): no line ends with a number
    assert not any(line.split()[-1].isdigit() for line in lines)


@pytest.mark.parametrize("width", [80, 120])
def test_japanese_follows_the_kinsoku_rules_and_keeps_numbers_with_counters(width: int) -> None:
    lines = wrap(JAPANESE, width, first="  ? ", rest="    ")
    assert len(lines) >= 2
    body = [line[4:] for line in lines]
    assert "".join(body).replace(" ", "") == JAPANESE.replace(" ", "")
    assert all(display_width(line) <= width for line in lines)
    for before, after in zip(body, body[1:], strict=False):
        assert after[0] not in NO_LINE_START, (before, after)      # no line starts with 。、」
        assert before[-1] not in NO_LINE_END, (before, after)      # none ends with 「（
        assert not (before[-1].isdigit() and after[0] in COUNTERS), (before, after)  # 5⏎秒


def test_japanese_never_leaves_a_stop_alone_at_any_width() -> None:
    text = "USBヘッドセットを抜いて差し直してください。「接続済み」と表示されています。"
    for width in range(6, 60):
        lines = wrap(text, width)
        assert "".join(lines) == text
        assert all(display_width(line) <= width for line in lines), width
        assert all(line[0] not in NO_LINE_START for line in lines), (width, lines)
        assert all(line != "。" for line in lines)


@pytest.mark.parametrize("width", [80, 120])
def test_korean_breaks_at_spaces_and_loses_no_character(width: int) -> None:
    lines = wrap(KOREAN, width, first="  ! ", rest="    ")
    assert len(lines) >= 2
    assert all(display_width(line) <= width for line in lines)
    assert [w for line in lines for w in line.split()] == ["!", *KOREAN.split()]


def test_widths_count_display_columns() -> None:
    assert display_width("abc") == 3
    assert display_width("準備完了") == 8 and display_width("한국어") == 6
    assert display_width("e\u0301") == 1                      # a combining accent takes none
    assert display_width(pad("接続", 10)) == 10 and display_width(pad("ok", 10)) == 10
    assert truncate("コンタクトセンターへの接続", 9) == "コンタク…"
    assert display_width(truncate("コンタクトセンターへの接続", 9)) <= 9


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("label,text", [("Fix: ", ENGLISH), ("Åtgärd: ", SWEDISH),
                                        ("対処: ", JAPANESE), ("해결 방법: ", KOREAN)],
                         ids=["en", "sv", "ja", "ko"])
def test_fix_is_its_own_line_with_a_hanging_indent(label: str, text: str, width: int) -> None:
    lines = labelled(label, text, width, indent="   ")
    assert lines[0].startswith("   " + label)
    hang = 3 + display_width(label)
    assert all(line.startswith(" " * hang) and line[hang] != " " for line in lines[1:])
    assert all(display_width(line) <= width for line in lines)


def test_a_word_wider_than_the_line_is_cut_not_lost() -> None:
    path = "/home/agent/.local/share/agent-kit/very-long-folder-name/report.html"
    lines = wrap(f"Report: {path}", 30)
    assert all(display_width(line) <= 30 for line in lines)
    assert "".join(lines).replace("Report:", "Report: ") == f"Report: {path}"


_TEXT = st.text(alphabet=st.sampled_from(list("ab cd, 12 ms。、「」接続テスト한국어 %")),
                max_size=200)


@given(_TEXT, st.integers(min_value=4, max_value=130))
def test_wrapping_never_overflows_and_never_loses_a_character(text: str, width: int) -> None:
    lines = wrap(text, width)
    assert all(display_width(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_event_lines_wrap_on_a_terminal_and_stay_one_line_in_a_log() -> None:
    import io

    from agent_kit.face.text_wrap import lines_for

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    event = "Not ready to take calls: " + ENGLISH
    assert lines_for(io.StringIO(), event, first="agent-kit: ") == ["agent-kit: " + event]
    wrapped = lines_for(Tty(), event, first="agent-kit: ")
    assert len(wrapped) > 1 and all(display_width(line) <= 120 for line in wrapped)


def proportional_px(char: str) -> int:
    """A fake of Tk's ``Font.measure`` for one character of an 11-point proportional font:
    narrow Latin letters, wide ones, and full-width CJK, as a real font measures them."""
    if display_width(char) == 2:
        return 15
    if char in "iljtf.,:;'| ":
        return 4
    if char in "mwMW@":
        return 12
    return 8


def measured_px(line: str) -> int:
    return sum(proportional_px(c) for c in line)


@pytest.mark.parametrize("width_px", [300, 520, 1100])
def test_pixel_wrapping_of_japanese_keeps_the_kinsoku_rules(width_px: int) -> None:
    lines = wrap_measured(JAPANESE, width_px, proportional_px)
    assert len(lines) >= 2
    assert "".join(lines).replace(" ", "") == JAPANESE.replace(" ", "")
    assert all(measured_px(line) <= width_px for line in lines)
    for before, after in zip(lines, lines[1:], strict=False):
        assert after[0] not in NO_LINE_START, (before, after)      # no line starts with 。、」
        assert before[-1] not in NO_LINE_END, (before, after)
        assert not (before[-1].isdigit() and after[0] in COUNTERS), (before, after)
        assert not (before.endswith("IT") and after.startswith("部門")), (before, after)


def test_pixel_wrapping_of_japanese_never_splits_it_from_its_department() -> None:
    text = ("問題が解決しない場合は、IT部門に連絡してください。"
            "IT部門の番号は5 台目の端末にあります。")
    for width_px in range(60, 700, 7):
        lines = wrap_measured(text, width_px, proportional_px)
        assert "".join(lines).replace(" ", "") == text.replace(" ", ""), width_px
        for before, after in zip(lines, lines[1:], strict=False):
            assert after[0] not in NO_LINE_START, (width_px, lines)
            assert not (before.rstrip().endswith("IT") and after.startswith("部門")), lines
            assert not (before.rstrip()[-1].isdigit() and after[0] in COUNTERS), lines


@pytest.mark.parametrize("width_px", [240, 600])
@pytest.mark.parametrize("text", [ENGLISH, SWEDISH, KOREAN], ids=["en", "sv", "ko"])
def test_pixel_wrapping_breaks_latin_and_korean_only_at_spaces(text: str, width_px: int
                                                               ) -> None:
    lines = wrap_measured(text, width_px, proportional_px)
    assert len(lines) >= 2
    assert all(measured_px(line) <= width_px for line in lines)
    assert [w for line in lines for w in words(line)] == words(text)


def test_pixel_wrapping_measures_each_character_once_and_keeps_newlines() -> None:
    asked: list[str] = []

    def measure(char: str) -> int:
        asked.append(char)
        return proportional_px(char)

    lines = wrap_measured("→\u00a0Unplug the headset.\nそれから再起動してください。", 2000, measure)
    assert lines == ["→\u00a0Unplug the headset.", "それから再起動してください。"]
    assert len(asked) == len(set(asked))   # Tk's measure is a round trip: asked once a char
    # the no-break space keeps the arrow with the first word at a narrow width too
    narrow = wrap_measured("→\u00a0Unplug the headset.", 60, proportional_px)
    assert narrow[0].startswith("→\u00a0Unplug")


@given(_TEXT, st.integers(min_value=30, max_value=900))
def test_pixel_wrapping_never_overflows_and_never_loses_a_character(text: str, width_px: int
                                                                    ) -> None:
    lines = wrap_measured(text, width_px, proportional_px)
    assert all(measured_px(line) <= width_px for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
