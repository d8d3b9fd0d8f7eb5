"""The EM loop of Algorithm 1, its stages and its report hooks."""
from .console import QuietConsoleRunner, TrainProgressHook
from .em_loop import IterativeAffinityLoop
from .report_hook import EMReportHook, ValReportHook

__all__ = ['IterativeAffinityLoop', 'EMReportHook', 'ValReportHook',
           'QuietConsoleRunner', 'TrainProgressHook']
