# examples/demo/plots.gp: the demo's plots, from the TSV files its Makefile
# writes into dir (gnuplot -e "dir='demo'" plots.gp):
#   sft.png   SFT loss per step, one curve per curriculum phase
#   grpo.png  GRPO per step: reward terms, KL, completion length, loss
#   acc.png   Acc@0.5 with its 95% interval per phase and split
set terminal pngcairo size 900,600 font ",10" noenhanced
set grid
set key top right

set output dir.'/sft.png'
set title 'SFT: cross-entropy per answer token'
set xlabel 'step (within its phase)'
set ylabel 'loss (nats)'
set logscale y
plot dir.'/look.tsv' using 1:2 with lines title 'phase 1: shapes 4x their size', \
     dir.'/sft.tsv'  using 1:2 with lines title 'phase 2: shapes 1x to 3x'
unset logscale y

set output dir.'/grpo.png'
set multiplot layout 2,2 title 'GRPO from the SFT model (per step)'
set title 'rewards (mean over completions)'
set xlabel 'step'
unset ylabel
set key bottom right
plot dir.'/grpo.tsv' using 1:5 with lines title 'format', \
     dir.'/grpo.tsv' using 1:6 with lines title 'iou', \
     dir.'/grpo.tsv' using 1:6 smooth bezier with lines lw 2 title 'iou, smoothed'
set key top right
set title 'KL to the SFT model (k3)'
plot dir.'/grpo.tsv' using 1:3 with lines notitle
set title 'completion length (tokens)'
plot dir.'/grpo.tsv' using 1:4 with lines notitle
set title 'loss'
plot dir.'/grpo.tsv' using 1:2 with lines notitle
unset multiplot

set output dir.'/acc.png'
set title 'Acc@0.5 (IoU > 0.5), 95% Wilson interval'
set xlabel ''
set ylabel 'accuracy'
set yrange [0:1]
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.6 border -1
set key top left
plot dir.'/acc.tsv' using 2:3:4:xtic(1) title 'val', '' using 5:6:7 title 'ood'
