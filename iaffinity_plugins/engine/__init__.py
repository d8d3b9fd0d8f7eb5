"""The EM loop of Algorithm 1, its stages and its report hook."""
from .em_loop import IterativeAffinityLoop
from .report_hook import EMReportHook

__all__ = ['IterativeAffinityLoop', 'EMReportHook']
