"""Which request ids one ``add_requests`` call has already sent, in 16 to 32 bytes an id.

The service keeps one request per id: an identical repeat in the input adds nothing, so it must not
be counted. A Python ``set`` of the ids would hold every id string (a million ids: hundreds of MB);
a set of their hashes still costs about 70 bytes an id. This table keeps 64-bit hashes in one flat
array. Two different ids with the same hash (about one chance in 10^7 for a million ids) would make
the count one short; every request is still sent.
"""

from __future__ import annotations

from array import array

_EMPTY = 0


class SeenIds:
    """An open-addressing set of 64-bit id hashes, at most half full.

    >>> seen = SeenIds()
    >>> [seen.add(request_id) for request_id in ["a", "b", "a"]], len(seen)
    ([True, True, False], 2)
    """

    def __init__(self, capacity: int = 1024) -> None:
        size = 1 << max(capacity - 1, 1).bit_length()
        self._table = array("q", bytes(8 * size))
        self._mask = size - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, request_id: str) -> bool:
        """Note ``request_id``; True when it was not seen before."""
        key = hash(request_id) or 1  # 0 marks an empty slot
        table, mask = self._table, self._mask
        slot = key & mask
        while (found := table[slot]) != _EMPTY:
            if found == key:
                return False
            slot = (slot + 1) & mask
        table[slot] = key
        self._count += 1
        if self._count * 2 > mask:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._table
        self._mask = mask = self._mask * 2 + 1
        self._table = table = array("q", bytes(8 * (mask + 1)))
        for key in old:
            if key != _EMPTY:
                slot = key & mask
                while table[slot] != _EMPTY:
                    slot = (slot + 1) & mask
                table[slot] = key
