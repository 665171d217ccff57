"""The single record of which partitions this member may still write and commit."""

from __future__ import annotations

from viewstats.ingest.consumer.assignment import Assignment, Partition

P0, P1 = Partition("t", 0), Partition("t", 1)


def test_a_lease_is_held_until_revoked_or_given_up() -> None:
    assignment = Assignment(lambda _: True)
    first, other = assignment.take(P0), assignment.take(P1)
    assert assignment.holds(first) and assignment.holds(other)
    assignment.give_up(first)
    assert not assignment.holds(first) and assignment.holds(other)
    assignment.revoke([P1])
    assert not assignment.holds(other)


def test_a_partition_taken_again_does_not_revive_the_old_lease() -> None:
    assignment = Assignment(lambda _: True)
    old = assignment.take(P0)
    assignment.revoke([P0])
    new = assignment.take(P0)
    assert assignment.holds(new) and not assignment.holds(old)
    assignment.give_up(old)  # a late give-up of the old lease leaves the new one alone
    assert assignment.holds(new)


def test_every_revoke_moves_the_epoch_even_of_partitions_never_taken() -> None:
    assignment = Assignment(lambda _: True)
    before = assignment.epoch
    assignment.revoke([])
    assignment.revoke([P0])
    assert assignment.epoch == before + 2


def test_a_partition_the_group_no_longer_assigns_is_not_held() -> None:
    in_group = {P0, P1}
    assignment = Assignment(in_group.__contains__)
    lease = assignment.take(P0)
    in_group.discard(P0)  # moved by the group; the revoke has not reached us yet
    assert not assignment.holds(lease)
