"""Our own training sentences: neutral questions, informational posts, complaint questions, praise, (en)
mild shrugs, short reactions and (en) churn complaints and their loyal counterparts.

None of the shared data sets has neutral questions: in Weibo and the review sets nearly every question is
rhetorical and negative ("这也叫外卖吗？"), so a model trained on them alone reads "吗？" as anger and pages
on "快达快递在成都有网点吗？". These sentences — templates and fillers written by the crisiswatch team, no
third-party text — teach the models that asking for information is neutral and not a complaint, while
asking *why something went wrong* still is.

Sampling is seeded, so the output is fixed; `detectors/text/training/own_questions_{en,zh}.tsv` are this
module's output (a test checks they are in sync). Regenerate with
`python -m crisiswatch.detectors.text.own_training detectors/text/training`.

Since 2026.11.6 also praise (`positive`, not a complaint) — much of it phrased with negated complaint
words ("从来没让我失望", "no complaints", "can't fault"), which the polarity and complaint data rarely show —
and, in English, mild shrugs about a change ("a bit pricier now, oh well": `neutral`, not a complaint: the
team's labelling rule for paging is that a shrug is not a grievance). New kinds are generated after the old
ones, so the earlier rows are unchanged.

Since 2026.11.7, in both languages, short `reaction`s that carry no judgement (acknowledgements, fillers,
bookmarking, following along, giveaway cheers, tagging a friend, asking for updates: "了解了", "蹲后续", "码住",
"冲冲冲", "got it", "following", "any update?", "entered!": `neutral`, not complaints — on Weibo such
comments are everywhere, and the polarity data read many of them as negative), and in English `churn`
(repeated failure and leaving: "lost my bag again", "third time", "never showed up", "switching to X for
good", "half the size for more money", "found glass in my salad": `negative`, complaints) with its
counterpart `loyal` (the same words in praise: "on time again", "switched to X for good, best decision":
`positive`, not complaints). The Chinese models already read repeated failure and leaving as complaints,
so there are no Chinese churn rows.

Since 2026.11.8, in both languages, `news` (media and official announcements about a brand, on Weibo often a
【headline】: `neutral`, not complaints) and `giveaway` (a brand's own "follow and forward to win" posts:
`positive`, not complaints). Both go viral by design, and the models read such posts as negative (【…】) or as
complaints (prizes named like orders).

Columns: `text`, `sentiment` (`neutral`, `negative` or `positive`), `is_complaint` (`0`/`1`), `kind`
(`question`, `info`, `complaint_question`, `praise`, `mild`, `reaction`, `churn`, `loyal`, `news` or
`giveaway`).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

SEED = 20261124
COUNTS = {
    "question": 420,
    "info": 140,
    "complaint_question": 260,
    "praise": 240,
    "mild": 100,
    "reaction": 240,
    "churn": 200,
    "loyal": 200,
    "news": 200,
    "giveaway": 200,
}


def _split(items: str) -> list[str]:
    """Filler lists are written as `a|b|c` to keep them compact."""
    return items.split("|")


_ZH: dict[str, list[str]] = {
    "brand": _split(
        "快达快递|顺丰|京东|美团|饿了么|招商银行|中国移动|联通|海底捞|星巴克|如家酒店|东方航空|小米|华为|宜家|肯德基|滴滴|携程|拼多多|国家电网|"
        "中国银行|瑞幸|格力|海尔|优衣库|麦当劳|中通|韵达|盒马|网易"
    ),
    "city": _split(
        "北京|上海|广州|深圳|杭州|南京|武汉|西安|重庆|长沙|苏州|天津|青岛|厦门|昆明|郑州|合肥|沈阳|大连|哈尔滨"
    ),
    "place": _split("网点|门店|营业厅|自提点|售后服务中心|分店|专卖店|服务台|体验店"),
    "product": _split(
        "手机|耳机|平板|笔记本电脑|冰箱|空调|洗衣机|电饭煲|运动鞋|外套|奶粉|咖啡机|路由器|电动牙刷|吸尘器|充电器|台灯|行李箱|电热水壶|手表"
    ),
    "option": _split("白色|黑色|大号|小号|粉色|加厚款|128G的|国行版|儿童款|无线款"),
    "pay": _split("微信支付|支付宝|信用卡|花呗分期|银联|数字人民币|现金|外币"),
    "service": _split(
        "上门安装|开发票|以旧换新|分期付款|送货上门|预约|包装成礼盒|免费寄存|开具收据|延长保修"
    ),
    "use": _split("设置|连接蓝牙|恢复出厂设置|清洗|充电|激活|绑定账号|更新系统"),
    "item": _split("充电宝|宠物|雨伞|婴儿车|自行车|酒|乐器|水果"),
    "time": _split("几点|周几|什么时候|几号"),
    "when": _split("明天|周末|国庆期间|春节|下周一|今晚|五一假期|元旦"),
    "days": _split("三天|五天|一周|十天|半个月|两周|一个月|二十天"),
    "defect": _split("坏了|黑屏|漏水|开不了机|发烫|掉色|断线|充不进电|有异味|裂开了|自动关机|卡死"),
    "bad_act": _split(
        "乱扣费|又延误|取消我的订单|随便涨价|不给退款|多收我钱|把我的件弄丢了|不发货|把我的账号封了|乱收服务费"
    ),
    "problem": _split(
        "订单显示已签收但我根本没收到|外卖超时一个小时还没送到|网络又断了|说好的退款一直没到账|客服电话一直打不通|包裹被退回了|刚买的东西就坏了|重复扣了两次钱"
    ),
}

_ZH_FRAMES: dict[str, list[str]] = {
    "question": [
        "{brand}在{city}有{place}吗？",
        "请问{brand}的{place}{time}开门？",
        "这款{product}有没有{option}？",
        "{brand}的{product}有{option}吗",
        "请问{brand}支持{pay}吗？",
        "{brand}可以用{pay}付款吗？",
        "想问一下{brand}寄到{city}要几天？",
        "有人知道{brand}的客服电话是多少吗？",
        "{brand}{place}{when}营业吗？",
        "请问{product}可以{service}吗？",
        "{brand}买{product}能{service}吗",
        "{product}的保修期是多久？",
        "{city}哪里可以买到{brand}的{product}？",
        "{brand}会员有什么权益呢？",
        "求问{brand}的{product}怎么{use}？",
        "{product}怎么{use}啊？",
        "{brand}的{product}值得买吗？",
        "请问{brand}的{place}是否可以停车？",
        "坐{brand}的航班能带{item}吗？",
        "{brand}的快递能不能放快递柜？",
        "大家买{product}一般去哪里呢？",
        "{brand}{place}在{city}哪个区？",
        "请问{city}到{city2}的快递要多久？",
        "{brand}的新{product}什么时候上市？",
        "{brand}{when}有没有活动？",
        "请问{brand}的{product}是哪里产的？",
        "咨询一下，{brand}的{product}多少钱？",
        "{brand}和{brand2}的{product}哪个好？",
        "有没有人用过{brand}的{product}？",
        "{brand}{when}上班吗？",
        "请问在{brand}买的{product}可以到{city}的{place}取吗？",
        "{brand}的{place}可以带{item}进去吗？",
        "求推荐{city}的{brand}{place}",
        "{brand}的营业时间是几点到几点？",
        "想问问{brand}的会员卡在{city}能用吗",
        "{brand}的{product}送货到{city}要运费吗？",
        "请问{brand}{when}几点关门？",
        "{brand}支不支持{service}？",
        "{product}选{option}还是{option2}好呢？",
        "请问{brand}现在还招人吗？",
    ],
    "info": [
        "{brand}在{city}新开了一家{place}。",
        "{brand}的新款{product}{when}上市。",
        "今天在{brand}买了一个{product}。",
        "{brand}{place}营业时间调整为早九点到晚十点。",
        "刚收到{brand}的快递。",
        "{when}去{brand}{place}办业务。",
        "{brand}{place}搬到了{city}新区。",
        "{brand}{when}全场九折。",
        "{brand}的{product}可以用{pay}付款。",
        "在{brand}下单了{product}，{when}送到。",
        "{brand}的{place}{when}正常营业。",
        "{city}的{brand}{place}地址已更新。",
        "{brand}宣布{when}起支持{service}。",
        "我们公司{when}统一采购{brand}的{product}。",
        "{brand}{product}的说明书在官网可以下载。",
    ],
    "complaint_question": [
        "为什么我在{brand}买的{product}{days}了还没到？",
        "{brand}怎么回事？{problem}",
        "{brand}凭什么{bad_act}？",
        "为什么{brand}{bad_act}？",
        "{brand}的{product}才用{days}就{defect}，这质量还能买吗？",
        "退款申请了{days}，{brand}到底什么时候退钱？",
        "{brand}客服为什么一直不回复？{problem}",
        "{brand}的{product}{defect}，有没有人管？",
        "我的{product}到底去哪了？{brand}给个说法！",
        "{brand}又{bad_act}，还让不让人活了？",
        "为啥{brand}的{product}{defect}了也不给换？",
        "{problem}，{brand}你们到底管不管？",
        "{brand}的{product}{defect}，售后还推来推去，这是什么服务？",
        "为什么{brand}的快递{days}都没动静？",
        "{brand}能不能别再{bad_act}了？",
        "{problem}，这就是{brand}的服务吗？",
        "等了{days}，{brand}还是没解决，到底要等多久？？",
        "{brand}的{product}买回来就{defect}，怎么办？",
    ],
    "praise": [
        "{brand}的{product}真不错，下次还买。",
        "{brand}送货很快，点赞！",
        "用了{days}了，{brand}的{product}一点问题都没有。",
        "{brand}客服态度很好，问题很快就解决了。",
        "{brand}的服务没得说，好评。",
        "又在{brand}买了{product}，还是那么好用。",
        "{brand}从来没让我失望过，{product}质量很好。",
        "{brand}的{product}绝了，强烈推荐！",
        "{brand}{when}也准时送到，靠谱。",
        "第二次买{brand}的{product}了，依然满意。",
        "{brand}的{product}没毛病，物超所值。",
        "{brand}这次没有延误，体验很好。",
        "{brand}{place}的店员很热情，不错不错。",
        "给{brand}点个赞，{product}包装很用心。",
        "在{brand}买东西从来不用担心，放心。",
        "{brand}的{product}用着很舒服，爱了。",
        "{brand}的售后真的给力，当天就给换了{product}。",
        "每次都选{brand}，不会后悔。",
        "{brand}的订单{when}就送到了，好评！",
        "在{brand}下的订单包装很好，满意。",
        "{brand}的外卖送得很快，还是热的，点赞。",
        "{brand}这单{product}发货超快，靠谱！",
    ],
}

_EN: dict[str, list[str]] = {
    "brand": _split(
        "Acme|Northwind|BlueJet|Parcelo|Zenbank|Skyline Air|FreshCart|Volt Mobile|"
        "HomeNest|Urbanfit|PixelPhone|Quickship|Maple Telecom|Roastery|Cozy Inn|TrailGear|"
        "Brightpower|Swiftride|Lumen Bank|Orbit Cable"
    ),
    "place": _split("store|branch|service center|outlet|pickup point|office|showroom|kiosk"),
    "city": _split(
        "Chengdu|Toronto|Leeds|Denver|Austin|Dublin|Perth|Osaka|Lyon|Boston|Manchester|"
        "Calgary|Auckland|Seattle"
    ),
    "country": _split("Canada|Ireland|Mexico|Japan|Germany|Australia|Brazil|Norway"),
    "product": _split(
        "phone|headphones|tablet|laptop|fridge|air conditioner|washing machine|"
        "running shoes|jacket|coffee maker|router|vacuum|smartwatch|suitcase|kettle|"
        "desk lamp|charger|baby formula"
    ),
    "option": _split(
        "in blue|in black|in a larger size|in XL|with 256GB|in a kids' version|in white|with a UK plug"
    ),
    "pay": _split("Apple Pay|PayPal|a gift card|cash|a credit card|Google Pay|installments"),
    "service": _split(
        "installation|gift wrapping|same-day delivery|a trade-in|an extended warranty|"
        "click and collect|price matching|free returns"
    ),
    "use": _split("reset|pair|clean|update|register|set up|charge|activate"),
    "when": _split(
        "on Sunday|on public holidays|this weekend|on Christmas Eve|tomorrow|next Monday|over Easter|tonight"
    ),
    "item": _split("a stroller|a bike|a pet|a power bank|a guitar|skis"),
    "days": _split("two weeks|ten days|a month|three weeks|five days|six weeks|over a week"),
    "defect": _split(
        "stopped working|won't turn on|keeps overheating|is leaking|cracked|"
        "keeps crashing|won't charge|died|keeps disconnecting"
    ),
    "bad_act": _split(
        "charge me twice|cancel my order without telling me|lose my parcel|"
        "raise my bill again|refuse my refund|lock my account|ignore my emails|"
        "delay my flight again"
    ),
    "problem": _split(
        "My parcel says delivered but it never came.|The refund still hasn't shown up.|"
        "Nobody answers the support line.|My internet has been down for days.|"
        "I was billed for something I cancelled.|The order is a week late."
    ),
}

_EN_FRAMES: dict[str, list[str]] = {
    "question": [
        "Does {brand} ship to {country}?",
        "Is there a {brand} {place} in {city}?",
        "What time does the {brand} {place} open {when}?",
        "Is the {product} available {option}?",
        "Do you have the {product} {option}?",
        "Can I pay with {pay} at {brand}?",
        "Does {brand} accept {pay}?",
        "How long does {brand} take to deliver to {city}?",
        "Is the {brand} {place} open {when}?",
        "Do you offer {service} on the {product}?",
        "Does {brand} do {service}?",
        "What's the warranty on the {brand} {product}?",
        "Where can I buy the {brand} {product} in {city}?",
        "How do I {use} my {product}?",
        "How do you {use} the {brand} {product}?",
        "Is the {brand} {product} worth buying?",
        "Can I bring {item} on a {brand} flight?",
        "Anyone know if {brand} has a {place} in {city}?",
        "Which is better, the {brand} {product} or the {brand2} one?",
        "When does the new {brand} {product} come out?",
        "Is {brand} having a sale {when}?",
        "Where is the nearest {brand} {place}?",
        "How much is the {brand} {product}?",
        "Has anyone tried the {brand} {product}?",
        "What are the opening hours of the {brand} {place} in {city}?",
        "Could you tell me if the {product} comes {option}?",
        "Can I pick up my {brand} order at the {city} {place}?",
        "Do I need an appointment at the {brand} {place}?",
        "What payment options does {brand} have?",
        "Is {brand} hiring in {city}?",
        "Does the {brand} {product} work in {country}?",
        "How much does shipping to {country} cost with {brand}?",
        "Can my {brand} membership be used in {city}?",
        "@{brand} is the {product} back in stock?",
        "@{brand} do you deliver to {city} {when}?",
    ],
    "info": [
        "{brand} just opened a new {place} in {city}.",
        "The new {brand} {product} launches {when}.",
        "Bought a {product} at {brand} today.",
        "The {brand} {place} is moving to a new address in {city}.",
        "Picked up my {brand} parcel this morning.",
        "Heading to the {brand} {place} {when}.",
        "{brand} now accepts {pay}.",
        "My {brand} order arrives {when}.",
        "The {brand} {place} in {city} opens at 9am {when}.",
        "{brand} announced {service} starting {when}.",
        "We're switching to {brand} next month.",
        "The {brand} {product} manual is on their website.",
    ],
    "complaint_question": [
        "Why has my {brand} refund still not arrived after {days}?",
        "Why is my {brand} order still not here after {days}??",
        "@{brand} why did you {bad_act}?",
        "Why does {brand} keep trying to {bad_act}?",
        "Why did my {brand} {product} {defect} after {days}?",
        "My {product} {defect} after {days}, is anyone at {brand} going to help?",
        "{problem} Where is my money, {brand}?",
        "{problem} Why does {brand} not care?",
        "How many times do I have to contact {brand} before someone answers?",
        "@{brand} seriously, why is nobody replying? {problem}",
        "Why does the {brand} app keep crashing since the update?",
        "When will {brand} fix this? {problem}",
        "Is {brand} ever going to replace my {product} that {defect}?",
        "How is it acceptable that {brand} would {bad_act}??",
        "What happened to my {brand} order? {problem}",
        "Why am I still waiting after {days}, {brand}?",
        "Why do I have to wait {days} for a new {product} when mine {defect}?",
        "{brand}, can you explain why you {bad_act}?",
    ],
    "praise": [
        "Never had a problem with {brand}.",
        "{brand} hasn't disappointed me once.",
        "Another smooth order from {brand}, no complaints.",
        "Can't fault {brand}, the {product} is great.",
        "{brand} delivered early again, love it.",
        "Third {product} from {brand} and still no issues.",
        "Nothing but good experiences with {brand}.",
        "{brand} support sorted it in five minutes, brilliant.",
        "Really happy with my new {product} from {brand}.",
        "{brand} never fails, great service as always.",
        "No delays, no fuss. {brand} is the best.",
        "Great {product} again from {brand}!",
        "Honestly can't complain about {brand}, always on time.",
        "Shoutout to {brand} for the quick refund, no hassle at all.",
        "My {brand} {product} still works perfectly after {days}.",
        "The {brand} {place} in {city} was fantastic {when}.",
        "Not a single issue with {brand} so far, highly recommend.",
        "{brand} came through again. Thank you!",
    ],
    "mild": [
        "{brand} is a bit pricier now. Oh well.",
        "The {brand} {product} is fine, nothing special.",
        "{brand} changed the app layout. Whatever.",
        "It's ok I guess, the {product} does the job.",
        "{brand} raised prices slightly this year, shrug.",
        "New {brand} logo. Not sure how I feel, but fine.",
        "The {brand} {product} is alright. Nothing to write home about.",
        "{brand} moved the {place} across town. Oh well, still close enough.",
        "Meh, the {brand} {product} is just average.",
        "{brand} membership costs a little more now, fair enough.",
    ],
}

# Fillers only the newer kinds use (2026.11.7). They are kept apart from `_ZH`/`_EN` because `_fill` draws
# one value per filler key: new keys there would change every earlier row.
_ZH_MORE: dict[str, list[str]] = {
    "ack": _split(
        "了解了|了解|嗯嗯|嗯|好的|好滴|收到|收到收到|已阅|知道了|明白了|懂了|原来如此|学到了|涨知识了|get了|ok|好哒|噢噢|哦哦"
    ),
    "follow": _split(
        "mark|码住|码一下|蹲|蹲后续|蹲一个|坐等后续|前排|沙发|路过|围观|吃瓜|看看|来看看|先码|插眼|留个脚印|打卡|马克一下|先收藏"
    ),
    "cheer": _split(
        "冲冲冲|冲|许愿|已参与|参与一下|来了来了|来了|转发|转发一下|求中|好运|锦鲤附体|支持|加油|转发抽奖|接好运|分母来了|陪跑"
    ),
    "laugh": _split("哈哈哈|哈哈哈哈|哈哈|666|6666|笑死|hhh|233|hhhh|笑不活了"),
    "update": _split("有后续吗|后续呢|怎么样了|更新了吗|求更新|等更新|然后呢|最后怎么样了|还有下文吗"),
    "friend": _split("快来|来看|一起|你看这个|来围观|快看|一起参与|看这个"),
    "end": [
        "",
        "",
        "！",
        "!",
        "～",
        "~",
        "。",
        "…",
        "！！",
        "[doge]",
        "[允悲]",
        "[哈哈]",
        "[心]",
        "🙏",
        "😂",
        "👀",
        "🐶",
    ],
    "mention": _split("@小明|@阿杰|@momo|@橙子同学|@王小二|@lily|@一只猫|@大鹏"),
}

_EN_MORE: dict[str, list[str]] = {
    "ack": _split(
        "got it|noted|ok|okay|ok thanks|understood|makes sense|fair enough|cool|gotcha|thanks for the info|"
        "good to know|TIL|ah I see|oh I see|interesting|hmm|huh|lol|lmao|haha|wow|oh|same|this|true|"
        "right|ok noted|thanks|yep"
    ),
    "follow": _split(
        "following|bookmarking|saving this|bumping|subscribed|watching this|commenting to follow|"
        "here for the comments|following for updates|saving for later|reading the thread now|"
        "following this one|keeping an eye on this|bookmarked"
    ),
    "ask": _split(
        "any update?|any updates?|update?|what happened next?|any news?|same question|same question here|"
        "also wondering|asking for a friend|did this get sorted?|any news on this?|so what happened?|"
        "has anyone heard back?|is there an update yet?"
    ),
    "cheer": _split(
        "entered!|done!|entered, good luck everyone|good luck everyone|fingers crossed|count me in|in!|"
        "shared!|retweeted|🤞|me please|pick me|entered and shared|good luck all|hoping to win|done and done"
    ),
    "friend": _split(
        "look at this|you need to see this|check this out|thoughts?|this is you|we should enter|"
        "saw this and thought of you|look|come see"
    ),
    "mention": _split("@jamie_k|@sam|@lena_m|@mikeb|@the_real_tom|@priya|@dani|@ollie99"),
    "end": ["", "", "!", ".", "!!", " 😂", " 👀", " 🙏", " lol", "...", " haha"],
    "handle": _split(
        "@Acme|@Northwind|@BlueJet|@Parcelo|@Zenbank|@SkylineAir|@FreshCart|@VoltMobile|@HomeNest|"
        "@Quickship|@Roastery|@Swiftride|@LumenBank|@OrbitCable"
    ),
    "thing": _split(
        "bag|suitcase|parcel|package|order|luggage|booking|reservation|delivery|coffee order|"
        "grocery order|prescription|return|laptop repair"
    ),
    "failed": _split(
        "lost my {thing}|cancelled my {thing}|messed up my {thing}|double charged me|delayed my flight|"
        "sent the wrong {thing}|lost my {thing}|cut my internet|bumped me off the flight|forgot my {thing}"
    ),
    "count": _split(
        "third time|fourth time|second time this month|third time this year|fifth time|third time in a row|"
        "second week running"
    ),
    "leave": _split(
        "Switching to {brand2} for good.|Moving to {brand2}.|Done with you, going to {brand2}.|"
        "Taking my business to {brand2}.|Cancelling my membership.|Never again.|I'm done.|"
        "Closing my account.|Goodbye for good.|Not using you again.|Cancelled my subscription.|"
        "Switching to {brand2} for good|Going with {brand2} from now on.|Done. Switching.|"
        "That's it, I'm out.|Lost a customer."
    ),
    "waited": _split(
        "6 hours|all day|two days|11 hours|the whole morning|since 8am|four hours|all afternoon"
    ),
    "tail": _split(
        "Zero notice.|No call, no text.|Not even an apology.|Unbelievable.|Nobody told me anything.|"
        "No notice at all|Nobody called.|Day off wasted."
    ),
    "found": _split(
        "a piece of glass|a hair|a bug|a piece of plastic|a screw|mould|a dead fly|a piece of metal|a staple"
    ),
    "inside": _split(
        "my salad|my sandwich|my coffee|my burrito|my cereal|the packaging|my meal|my delivery|my order|my suitcase"
    ),
    "after": _split(
        "Disgusting.|Is anyone else getting this?|Never ordering again.|Seriously?|Not okay.|"
        "Who checks this stuff?|Is anyone else...|Gross."
    ),
    "smaller": _split(
        "half the size it used to be|a third smaller than last year|way smaller than before|"
        "noticeably smaller|half what it was"
    ),
    "pricier": _split(
        "and costs more|and the price went up|for more money|and somehow costs more|but the price doubled"
    ),
}

_ZH_FRAMES["reaction"] = [
    "{ack}{end}",
    "{follow}{end}",
    "{cheer}{end}",
    "{laugh}{end}",
    "{update}{end}",
    "{ack}，{follow}{end}",
    "{follow}{follow2}{end}",
    "{cheer}{cheer2}{end}",
    "{mention} {friend}{end}",
    "{mention} {cheer}{end}",
    "{laugh}{end}{ack}",
    "{follow}，{update}{end}",
    "{ack}{ack2}{end}",
    "{mention} {mention2} {friend}{end}",
    "{cheer}{end} {mention}",
    "{brand}{cheer}{end}",
]

_EN_FRAMES["reaction"] = [
    "{ack}{end}",
    "{follow}{end}",
    "{ask}",
    "{cheer}",
    "{mention} {friend}{end}",
    "tagging {mention}{end}",
    "{ack}, {follow}{end}",
    "{ack}. {ask}",
    "{cheer} {mention} {mention2}",
    "{ack} {ack2}{end}",
    "{follow}. {ask}",
    "{mention} {ack}{end}",
    "{cheer} tagging {mention}",
    "{ack}{end} {follow}",
]

# Repeated failure and leaving: `{failed}`, `{leave}` hold `{thing}`/`{brand}`/`{brand2}` themselves, so the
# frame is filled twice (see `_fill`).
_EN_FRAMES["churn"] = [
    "{handle} {failed} AGAIN. {leave}",
    "{brand} {failed}. {leave}",
    "{handle} {failed}, {count}. {leave}",
    "For the {count}, {brand} {failed}. {leave}",
    "Waited {waited} at home for {brand} and they never showed up. {tail}",
    "{brand} never showed up. Again. {leave}",
    "{brand} {failed}. {count}. Never again.",
    "Done with {brand}. They {failed} again.",
    "Cancelling my {brand} membership, they {failed} for the {count}.",
    "The {brand} {product} is {smaller} {pricier}.",
    "{brand} {product}: {smaller} {pricier}. {leave}",
    "Found {found} in {inside} from {brand}. {after}",
    "{handle} found {found} in {inside}. {after}",
    "{brand} cancelled on me with zero notice, {count}. {leave}",
    "Never ordering from {brand} again, {count} they {failed}.",
    "{handle} {count} you {failed}. I'm switching to {brand2}.",
    "Booked {brand} for the morning, waited {waited}, nobody came. {tail}",
    "Yep, {brand} {failed}. {count}. {leave}",
]

# The other side of `churn`: "again", "third time", "for good", "switching to" also come with praise and
# loyalty; without these rows the churn rows taught that "again" alone is a complaint.
_EN_FRAMES["loyal"] = [
    "{brand} got my {thing} here early again. Love it.",
    "Third order from {brand} this month, perfect again.",
    "Switched to {brand} for good, best decision this year.",
    "{handle} nailed it again, thank you!",
    "{brand} sorted my {thing} in minutes again. Staying with you for good.",
    "Moved from {brand2} to {brand} last year and never looked back.",
    "For the {count}, {brand} delivered ahead of schedule. Impressed.",
    "{brand} did it again, flawless {thing}.",
    "Back with {brand} for good, they always deliver.",
    "{handle} the {product} is even better than the last one, thanks again!",
    "Renewed my {brand} membership again, worth every penny.",
    "{brand} on time again. Never switching.",
    "Once again {brand} came through, {thing} arrived in perfect shape.",
    "{handle} you've done it again, best {thing} experience ever.",
    "Again a great experience with {brand}. Will order again.",
    "{brand} again proves why I'm a customer for good.",
]

# 2026.11.8: `news` (a media or official announcement about a brand: neutral, not a complaint; on Weibo often a
# 【headline】, a format the polarity data mostly shows around bad news) and `giveaway` (a brand's own
# promotion, "follow and forward to win": positive, not a complaint; brands post them constantly and they
# are made to be forwarded). Their fillers are kept apart again, so that earlier rows do not change.
_ZH_2026_11_8: dict[str, list[str]] = {
    "event": _split(
        "与{brand2}达成战略合作|{city}旗舰店正式开业|推出新款{product}|公布春节期间营业安排|获得新一轮融资|"
        "启用新的品牌标识|在{city}设立区域总部|宣布部分商品降价|上线新版App|发布年度社会责任报告|"
        "入选年度最具价值品牌榜|宣布延长{product}保修期|开通{city}至{city2}新线路|召开年度股东大会|"
        "任命新任首席财务官|发布三季度经营数据"
    ),
    "detail": _split(
        "|详情请见官网|据悉，相关安排下月起实施|记者了解到，项目正在推进中|公司表示将继续加大投入|"
        "首批{prize}下周发售|相关负责人接受了采访|更多信息将于近期公布|#财经#|#科技#|（来源：本地新闻）"
    ),
    "occasion": _split("周年庆|双十一|新品上市|开学季|会员日|粉丝破百万|年终回馈|中秋|国庆|520"),
    "prize": _split(
        "代金券|全年免单|新款{product}|定制礼盒|免费配送券|会员月卡|限量周边|品牌保温杯|百元红包|体验套装"
    ),
    "winners": _split("5位|10位|20位|50位|88位|100位|3位|8位|66位|200位"),
    "draw": _split("明天中午开奖|周五开奖|下周一开奖|截止到月底|活动结束后公布名单|抽奖结果会私信通知"),
}

_EN_2026_11_8: dict[str, list[str]] = {
    "event": _split(
        "opens its flagship {place} in {city}|announces a partnership with {brand2}|launches a new {product}|"
        "posts its holiday opening hours|closes a new funding round|unveils a new logo|moves its regional "
        "headquarters to {city}|cuts prices on hundreds of items|releases a redesigned app|publishes its annual "
        "sustainability report|extends the warranty on its {product}|adds direct routes from {city}|holds its "
        "annual shareholder meeting|appoints a new finance chief|publishes third-quarter figures"
    ),
    "detail": _split(
        "|Details on the company website.|The change takes effect next month.|More details are expected "
        "soon.|The company says more investment will follow.|#business|#tech|(Local news)|Shares were flat "
        "in early trading."
    ),
    "occasion": _split(
        "anniversary|Black Friday|launch week|back to school|members' day|100k followers|holiday|summer sale"
    ),
    "prize": _split(
        "gift cards|a year of free delivery|a new {product}|gift boxes|free shipping vouchers|a month of "
        "membership|limited-edition merch|branded travel mugs|$100 vouchers|starter kits"
    ),
    "winners": _split("5|10|20|50|3|25|100|12"),
    "draw": _split(
        "Winners picked Friday.|Draw closes Sunday.|Ends at midnight.|Winners announced next week.|"
        "We'll DM the winners.|T&Cs apply."
    ),
}

_ZH_FRAMES["news"] = [
    "【{brand}{event}】{detail}",
    "快讯：{brand}{event}。{detail}",
    "#{brand}# {brand}{event}，{detail}",
    "据报道，{brand}{event}。",
    "【{brand}官方】{brand}{event}{detail}",
    "{brand}今日宣布{event}",
    "【财经】{brand}{event}",
    "{city}消息：{brand}{event}，{detail}",
]

_EN_FRAMES["news"] = [
    "{brand} {event}. {detail}",
    "BREAKING: {brand} {event}",
    "Report: {brand} {event}. {detail}",
    "{brand} {event}, the company said on Tuesday.",
    "NEWS | {brand} {event} {detail}",
    "{city}: {brand} {event}.",
]

_ZH_FRAMES["giveaway"] = [
    "🎁{brand}{occasion}福利！关注+转发本条，抽{winners}送{prize}，{draw}",
    "转发抽奖｜{brand}送出{winners}{prize}，关注我们并转发即可参与",
    "#{brand}{occasion}# 评论区说出你的心愿，抽{winners}小伙伴送{prize}[心]",
    "宠粉时间到！{brand}{occasion}转发抽{winners}各送{prize}，{draw}",
    "{brand}感恩回馈：关注并转发，抽取{winners}粉丝赠送{prize}",
    "【抽奖】{occasion}快乐！转发+关注{brand}，{draw}，抽{winners}送{prize}",
    "{brand}{occasion}大放送，转评赞抽{winners}送{prize}🎉",
]

_EN_FRAMES["giveaway"] = [
    "GIVEAWAY! Follow {brand} and retweet to win {prize}. {winners} winners. {draw}",
    "It's {occasion} at {brand}: RT and follow for a chance to win {prize}! {draw}",
    "{brand} {occasion} giveaway 🎉 {winners} lucky followers win {prize}. Retweet to enter.",
    "Win {prize}! Like, RT and tag a friend. {brand} {occasion}. {draw}",
    "To celebrate {occasion}, {brand} is giving {winners} of you {prize}. Retweet to enter!",
    "🎁 {brand} {occasion}: follow + RT = a chance at {prize}. {draw}",
]

_MORE = {"zh": _ZH_MORE, "en": _EN_MORE}
_NEWER = {"zh": _ZH_2026_11_8, "en": _EN_2026_11_8}
# The fillers a kind draws besides the shared ones (the older kinds draw none).
_EXTRA_FILLERS = {"reaction": _MORE, "churn": _MORE, "loyal": _MORE, "news": _NEWER, "giveaway": _NEWER}

_LABELS = {
    "question": ("neutral", "0"),
    "info": ("neutral", "0"),
    "complaint_question": ("negative", "1"),
    "praise": ("positive", "0"),
    "mild": ("neutral", "0"),
    "reaction": ("neutral", "0"),
    "churn": ("negative", "1"),
    "loyal": ("positive", "0"),
    "news": ("neutral", "0"),
    "giveaway": ("positive", "0"),
}


def _fill(frame: str, fillers: dict[str, list[str]], rng: random.Random) -> str:
    values: dict[str, str] = {}
    for key, choices in fillers.items():
        first = rng.choice(choices)
        values[key] = first
        # `{brand2}`, `{city2}`, `{option2}`: a second, different value of the same kind.
        values[f"{key}2"] = rng.choice([c for c in choices if c != first] or choices)
    text = frame.format(**values)
    # Fillers of the newer kinds may hold placeholders themselves (`lost my {thing}`); same values.
    return text.format(**values) if "{" in text else text


def rows(lang: str) -> list[tuple[str, str, str, str]]:
    """(text, sentiment, is_complaint, kind) rows for `lang`, deterministic."""
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
    fillers, frames = (_EN, _EN_FRAMES) if lang == "en" else (_ZH, _ZH_FRAMES)
    rng = random.Random(f"{SEED}-{lang}")
    out: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    for kind, count in COUNTS.items():
        if kind not in frames:
            continue  # e.g. no Chinese `mild` frames
        sentiment, is_complaint = _LABELS[kind]
        kind_fillers = {**fillers, **_EXTRA_FILLERS[kind][lang]} if kind in _EXTRA_FILLERS else fillers
        made = 0
        attempts = 0
        # Every frame in turn, then fillers at random: each frame is used about equally often.
        while made < count and attempts < count * 20:
            frame = frames[kind][attempts % len(frames[kind])]
            attempts += 1
            text = _fill(frame, kind_fillers, rng)
            if text in seen:
                continue
            seen.add(text)
            out.append((text, sentiment, is_complaint, kind))
            made += 1
    return out


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for lang in ("en", "zh"):
        path = directory / f"own_questions_{lang}.tsv"
        lines = ["text\tsentiment\tis_complaint\tkind", *("\t".join(row) for row in rows(lang))]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "detectors/text/training")):
        print(written_path)
