"""Start-up's objects are left out of the garbage collector's full passes (`bot.heap`)."""

from __future__ import annotations

import gc
import weakref

from bot.heap import freeze_start_up_objects


class Node:
    def __init__(self) -> None:
        self.partner: Node | None = None


def test_start_up_objects_are_left_out_of_full_collections_and_later_garbage_is_not() -> None:
    start_up = [Node() for _ in range(5_000)]
    # Start-up's own garbage is collected first, not frozen for good.
    left_over, its_partner = Node(), Node()
    left_over.partner, its_partner.partner = its_partner, left_over
    left_over_gone = weakref.ref(left_over)
    del left_over, its_partner
    try:
        assert freeze_start_up_objects() >= len(start_up)
        assert left_over_gone() is None
        full_pass = {id(obj) for obj in gc.get_objects(generation=2)}
        assert not any(id(node) in full_pass for node in start_up)
        # A cycle made after start-up is still found and freed.
        first, second = Node(), Node()
        first.partner, second.partner = second, first
        gone = weakref.ref(first)
        del first, second
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
