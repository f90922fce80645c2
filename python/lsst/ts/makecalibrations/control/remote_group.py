# This file is part of ts_makecalibrations.
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU
# General Public License as published by the Free Software Foundation, either version 3 of the
# License, or (at your option) any later version.
#
# This program is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY; without
# even the implied warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. See the GNU
# General Public License for more details.
#
# You should have received a copy of the GNU General Public License along with this program (the
# LICENSE file at the top of the repository). If not, see <https://www.gnu.org/licenses/>.
#
# SPDX-License-Identifier: GPL-3.0-or-later

"""A group of CSC remotes handled together, compatible with ts_observatory_control's ``RemoteGroup``.

`RemoteGroup` owns one ``salobj.Remote`` per component (``rem.<component>_<index>``), reads their
summary states and drives state transitions for the whole group. The OCPS client of the calibration
script is simply ``RemoteGroup(["OCPS:2"])``.

May import: `sal` (for ``salobj``) and the standard library.
"""

from __future__ import annotations

__all__ = ["RemoteGroup", "Usages", "UsagesResources"]

import asyncio
import dataclasses
import logging
import types
from collections.abc import Iterable
from typing import Any, Self

from ..sal import salobj


class Usages:
    """Intended usages of a group (bit flags); each selects the topics its remotes subscribe to.

    ``None`` as the intended usage (the default) means every topic. `DryTest` creates no remote.
    Subclasses add bits for their own usages (see ``ComCamUsages``).
    """

    All = 1 << 0
    StateTransition = 1 << 1
    MonitorState = 1 << 2
    MonitorHeartBeat = 1 << 5
    DryTest = 1 << 6


@dataclasses.dataclass(frozen=True)
class UsagesResources:
    """Which components and topics one usage needs.

    Attributes
    ----------
    components_attr : `tuple` [`str`, ...]
        Attribute names (``rem.<name>``) of the components the usage needs.
    readonly : `bool`
        True if the usage sends no command.
    include : `tuple` [`str`, ...] or `None`
        Bare names of the events and telemetry to subscribe to (`None` for all of them).
    """

    components_attr: tuple[str, ...]
    readonly: bool = False
    include: tuple[str, ...] | None = None


def component_attr_name(component: str) -> str:
    """Return the ``rem`` attribute name of a component: lowercase with ':' replaced by '_'.

    Parameters
    ----------
    component : `str`
        Component name with optional index, e.g. ``"OCPS:2"``.

    Returns
    -------
    attr_name : `str`
        For example ``"ocps_2"``.
    """
    return component.lower().replace(":", "_")


class RemoteGroup:
    """Remotes of a group of CSCs, with group state queries and transitions.

    Parameters
    ----------
    components : `list` [`str`]
        Component names with optional index (``"Name:index"``).
    domain : ``salobj.Domain``, optional
        Domain for the remotes. If `None` a domain is created and closed by `close`.
    log : `logging.Logger`, optional
        Parent logger; the group logs to its child named after the class (or to a logger named
        after the class if `None`).
    intended_usage : `int`, optional
        Bitwise-or of `Usages` values selecting the topics to subscribe to; `None` for all topics.
    concurrent_operation : `bool`, optional
        Transition the components concurrently (True) or one after another (False).
    """

    def __init__(
        self,
        components: list[str],
        domain: Any = None,
        log: logging.Logger | None = None,
        intended_usage: int | None = None,
        concurrent_operation: bool = True,
    ) -> None:
        self.fast_timeout = 5.0
        self.long_timeout = 30.0
        self.long_long_timeout = 120.0

        if log is None:
            self.log = logging.getLogger(type(self).__name__)
        else:
            self.log = log.getChild(type(self).__name__)
        self.concurrent_operation = concurrent_operation
        self.intended_usage = intended_usage

        self._components: dict[str, str] = {component_attr_name(c): c for c in components}
        if len(self._components) != len(components):
            raise ValueError(f"Duplicate components in {components}.")

        if domain is None:
            self._domain = salobj.Domain()
            self._owns_domain = True
        else:
            self._domain = domain
            self._owns_domain = False

        self.rem = types.SimpleNamespace()
        self.check = types.SimpleNamespace()

        resources = self._resources_for(intended_usage)
        start_tasks = []
        for attr, component in self._components.items():
            usage = resources.get(attr)
            if usage is None:
                setattr(self.rem, attr, None)
                setattr(self.check, attr, False)
                continue
            readonly, include = usage
            name, index = salobj.name_to_name_index(component)
            remote = salobj.Remote(
                self._domain,
                name,
                index,
                readonly=readonly,
                include=None if include is None else sorted(include),
            )
            setattr(self.rem, attr, remote)
            setattr(self.check, attr, True)
            start_tasks.append(remote.start_task)

        self.start_task: asyncio.Future | None = asyncio.gather(*start_tasks) if start_tasks else None

    # -- usages ---------------------------------------------------------------------------------------

    @property
    def components(self) -> list[str]:
        """Component names as given (``"Name:index"``)."""
        return list(self._components.values())

    @property
    def components_attr(self) -> list[str]:
        """Attribute names of the components in ``rem`` and ``check``."""
        return list(self._components)

    @property
    def domain(self) -> Any:
        """The ``salobj.Domain`` of the remotes."""
        return self._domain

    @property
    def usages(self) -> dict[int, UsagesResources]:
        """Topics needed by each usage. Subclasses add their own usages to this dictionary."""
        every = tuple(self.components_attr)
        generics = ("summaryState", "heartbeat", "errorCode", "logLevel", "logMessage")
        return {
            Usages.All: UsagesResources(every, readonly=False, include=None),
            Usages.StateTransition: UsagesResources(every, readonly=False, include=generics),
            Usages.MonitorState: UsagesResources(every, readonly=True, include=("summaryState",)),
            Usages.MonitorHeartBeat: UsagesResources(every, readonly=True, include=("heartbeat",)),
        }

    def _resources_for(self, intended_usage: int | None) -> dict[str, tuple[bool, set[str] | None]]:
        """Return ``{attr: (readonly, include)}`` for the components to create remotes for."""
        if intended_usage is None:
            return {attr: (False, None) for attr in self._components}
        if intended_usage & Usages.DryTest:
            return {}
        selected: dict[str, tuple[bool, set[str] | None]] = {}
        matched = False
        for usage, resource in self.usages.items():
            if usage & Usages.DryTest or (intended_usage & usage) != usage:
                continue
            matched = True
            for attr in resource.components_attr:
                readonly, include = selected.get(attr, (True, set()))
                readonly = readonly and resource.readonly
                if include is None or resource.include is None:
                    include = None
                else:
                    include = include | set(resource.include)
                selected[attr] = (readonly, include)
        if not matched:
            raise ValueError(f"Unknown intended_usage {intended_usage!r} for {type(self).__name__}.")
        return selected

    def components_to_check(self) -> list[str]:
        """Return the attribute names of the components whose state is checked."""
        return [attr for attr in self.components_attr if getattr(self.check, attr)]

    # -- states ---------------------------------------------------------------------------------------

    def _remote(self, component: str) -> Any:
        remote = getattr(self.rem, component, None)
        if remote is None:
            raise RuntimeError(f"No remote for component {component!r} in {type(self).__name__}.")
        return remote

    async def get_state(self, component: str, ignore_timeout: bool = False) -> Any:
        """Return the summary state of one component.

        Parameters
        ----------
        component : `str`
            Attribute name of the component (e.g. ``"ocps_2"``).
        ignore_timeout : `bool`, optional
            Return `None` instead of raising when no summary state arrives in time.

        Returns
        -------
        state : ``salobj.State`` or `None`

        Raises
        ------
        asyncio.TimeoutError
            If no summary state is known and ``ignore_timeout`` is False.
        """
        remote = self._remote(component)
        try:
            data = await remote.evt_summaryState.aget(timeout=self.fast_timeout)
        except TimeoutError:
            if ignore_timeout:
                return None
            raise TimeoutError(
                f"Timeout getting summary state for {component}; no historical data and no new "
                f"event within {self.fast_timeout}s."
            ) from None
        return salobj.State(data.summaryState)

    async def next_state(self, component: str) -> Any:
        """Wait for and return the next summary state of a component."""
        remote = self._remote(component)
        data = await remote.evt_summaryState.next(flush=False, timeout=self.fast_timeout)
        return salobj.State(data.summaryState)

    async def get_heartbeat(self, component: str) -> Any:
        """Wait for and return the next heartbeat of a component."""
        remote = self._remote(component)
        return await remote.evt_heartbeat.next(flush=True, timeout=self.fast_timeout)

    async def assert_all_enabled(self, message: str = "") -> None:
        """Raise `AssertionError` unless every checked component is ENABLED.

        Parameters
        ----------
        message : `str`, optional
            Appended to the error message.
        """
        components = self.components_to_check()
        states = await asyncio.gather(
            *[self.get_state(component, ignore_timeout=True) for component in components]
        )
        not_enabled = [
            self._components[component]
            for component, state in zip(components, states, strict=True)
            if state != salobj.State.ENABLED
        ]
        if not_enabled:
            raise AssertionError(f"The following components are not enabled: {not_enabled}. {message}")

    async def set_state(
        self,
        state: Any,
        overrides: dict[str, str] | None = None,
        components: Iterable[str] | None = None,
    ) -> None:
        """Transition components to ``state`` with the standard state-transition commands.

        Parameters
        ----------
        state : ``salobj.State``
            Desired summary state.
        overrides : `dict` [`str`, `str`], optional
            Configuration override per component attribute name (used by ``start``).
        components : iterable of `str`, optional
            Attribute names of the components to transition; all of them if `None`.

        Raises
        ------
        RuntimeError
            If any component failed to reach ``state``.
        """
        state = salobj.State(state)
        overrides = overrides or {}
        work = list(self.components_attr if components is None else components)
        unknown = [c for c in work if c not in self._components]
        if unknown:
            raise RuntimeError(f"Unknown components {unknown}; known: {self.components_attr}.")

        async def transition(component: str) -> Any:
            if not getattr(self.check, component):
                return await self.get_state(component, ignore_timeout=True)
            return await salobj.set_summary_state(
                self._remote(component),
                state,
                override=overrides.get(component, ""),
                timeout=self.long_long_timeout,
            )

        if self.concurrent_operation:
            results = await asyncio.gather(*[transition(c) for c in work], return_exceptions=True)
        else:
            results = []
            for component in work:
                try:
                    results.append(await transition(component))
                except Exception as e:
                    results.append(e)

        failed = []
        for component, result in zip(work, results, strict=True):
            if isinstance(result, BaseException):
                failed.append(component)
                self.log.error(f"Unable to transition {component} to {state!r}: {result}")
            else:
                self.log.debug(f"{component}: {result}")
        if failed:
            raise RuntimeError(f"Failed to transition {failed} to {state!r}.")
        self.log.info(f"All components in {state!r}.")

    async def enable(self, overrides: dict[str, str] | None = None) -> None:
        """Enable every checked component (a no-op for the ones already enabled)."""
        await self.set_state(salobj.State.ENABLED, overrides=overrides)

    async def standby(self) -> None:
        """Put every checked component in STANDBY."""
        await self.set_state(salobj.State.STANDBY)

    async def offline(self) -> None:
        """Put every checked component in OFFLINE."""
        await self.set_state(salobj.State.OFFLINE)

    # -- life cycle -----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the remotes, and the domain if the group created it."""
        for attr in self.components_attr:
            remote = getattr(self.rem, attr)
            if remote is not None:
                await remote.close()
        if self._owns_domain:
            await self._domain.close()

    async def __aenter__(self) -> Self:
        if self.start_task is not None:
            await self.start_task
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()
