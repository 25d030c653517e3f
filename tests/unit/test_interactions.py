import pandas as pd
import pytest

from shopdata.interactions import DatasetError, read_dataset, read_events, read_items, write_dataset


def write(path, text):
    path.write_text(text)
    return path


def test_reads_the_documented_format_with_optional_columns(tmp_path):
    write(tmp_path / "items.csv", "item_id,title\nA,Teapot\nB,Mug\n")
    write(tmp_path / "events.csv", "event_id,user_id,item_id,event_type,timestamp\n1,u,A,purchase,2011-01-02T10:00:00\n2,u,B,purchase,2011-01-02T10:00:00\n3,u,A,click,2011-01-03 09:00:00+01:00\n")
    items, events = read_dataset(tmp_path)
    assert list(items["item_id"]) == ["A", "B"] and items["price"].tolist() == [0.0, 0.0]
    # no basket_id: one basket per user and timestamp
    assert events["basket_id"][0] == events["basket_id"][1] != events["basket_id"][2]
    assert events["timestamp"][2] == pd.Timestamp("2011-01-03 08:00:00")  # converted to UTC
    assert events["quantity"].tolist() == [1, 1, 1]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty file"),
        ("event_id,user_id,item_id,timestamp\n1,u,A,2011-01-01\n", "missing column(s) event_type"),
        ("event_id,user_id,item_id,event_type,timestamp\n", "no rows"),
        ("event_id,user_id,item_id,event_type,timestamp\n1,u,A,purchase,2011-01-01\n2,u,A,purchase,yesterday\n", "row 3: unparseable timestamp 'yesterday'"),
        ("event_id,user_id,item_id,event_type,timestamp\n1,,A,purchase,2011-01-01\n", "row 2: empty user_id"),
        ("event_id,user_id,item_id,event_type,timestamp\n1,u,A,like,2011-01-01\n", "row 2: event_type 'like'"),
    ],
)
def test_bad_event_files_name_the_file_and_row(tmp_path, text, fragment):
    path = write(tmp_path / "events.csv", text)
    with pytest.raises(DatasetError) as info:
        read_events(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_bad_item_files(tmp_path):
    with pytest.raises(DatasetError, match="row 3: price 'cheap'"):
        read_items(write(tmp_path / "items.csv", "item_id,title,price\nA,Mug,1.5\nB,Pot,cheap\n"))
    with pytest.raises(DatasetError, match="duplicate item_id 'A'"):
        read_items(write(tmp_path / "items.csv", "item_id,title\nA,Mug\nA,Pot\n"))
    with pytest.raises(DatasetError, match="file not found"):
        read_items(tmp_path / "nope.csv")


def test_events_must_name_known_items(tmp_path):
    write(tmp_path / "items.csv", "item_id,title\nA,Teapot\n")
    write(tmp_path / "events.csv", "event_id,user_id,item_id,event_type,timestamp\n1,u,Z,purchase,2011-01-02\n")
    with pytest.raises(DatasetError, match="row 2: item_id 'Z' is not in items.csv"):
        read_dataset(tmp_path)


def test_write_then_read_round_trips(tmp_path):
    items = pd.DataFrame({"item_id": ["A"], "title": ["Teapot"], "description": [""], "category": ["kitchen"], "price": [2.5]})
    events = pd.DataFrame({"event_id": ["1"], "user_id": ["u"], "item_id": ["A"], "event_type": ["purchase"],
                           "timestamp": [pd.Timestamp("2011-01-02 10:00")], "basket_id": ["b1"], "quantity": [3]})
    write_dataset(tmp_path, items, events)
    items2, events2 = read_dataset(tmp_path)
    assert items2.to_dict("records") == items.to_dict("records")
    assert events2["timestamp"][0] == pd.Timestamp("2011-01-02 10:00") and events2["basket_id"][0] == "b1"
