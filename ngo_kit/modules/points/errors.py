"""The points module's own errors (each a ``Conflict``)."""

from __future__ import annotations

from ngo_kit.errors import Conflict


class RewardUnavailable(Conflict):
    """The reward is inactive or outside its window."""

    code = "reward_unavailable"
    template = "Reward {reward} is not available now."


class LimitReached(Conflict):
    """A per-member limit (reward limit or rule cap) would be exceeded."""

    code = "points_limit_reached"
    template = "The limit of {limit} for {what} is reached."


class TransfersDisabled(Conflict):
    """The organisation does not allow members to transfer points."""

    code = "transfers_disabled"
    template = "This organisation does not allow points transfers."


class NotReversible(Conflict):
    """The operation cannot be reversed (already reversed, or of a kind that is not)."""

    code = "not_reversible"
    template = "Operation {txn} cannot be reversed: {why}."


class WrongStatus(Conflict):
    """A redemption is not in the state the step needs."""

    code = "redemption_wrong_status"
    template = "Redemption {redemption} is {status}; this needs {needed}."
